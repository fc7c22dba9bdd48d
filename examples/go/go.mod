module libglm.example/chat

go 1.19
