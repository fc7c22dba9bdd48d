// GLMGeneration
