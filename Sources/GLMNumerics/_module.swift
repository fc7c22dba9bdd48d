// GLMNumerics
