// GLMFormats
