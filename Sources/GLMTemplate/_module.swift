// GLMTemplate
