// GLM
