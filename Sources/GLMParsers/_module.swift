// GLMParsers
