// GLMTokenizer
