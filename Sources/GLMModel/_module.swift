// GLMModel
