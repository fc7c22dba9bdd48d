import glm

model = glm.Model("Tests/Fixtures/models/glm-tiny-chat")
reply = model.chat([{"role": "user", "content": "Hello!"}], temperature=0)
print(reply["choices"][0]["message"]["content"])
