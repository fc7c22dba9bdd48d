build/bin/glm serve Tests/Fixtures/models/glm-tiny-chat --port 8080 --parallel 2
