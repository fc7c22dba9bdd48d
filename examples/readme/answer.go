// go run answer.go MODEL_DIR   (or, after `make install`: `#cgo pkg-config: glm` instead of the two lines below)
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../build/lib -lglm -Wl,-rpath,${SRCDIR}/../../build/lib
#include <stdlib.h>
#include <glm.h>
*/
import "C"

import (
	"fmt"
	"os"
	"unsafe"
)

func main() {
	dir := C.CString(os.Args[1])
	request := C.CString(`{"messages": [{"role": "user", "content": "Hello!"}], "temperature": 0}`)
	defer C.free(unsafe.Pointer(dir))
	defer C.free(unsafe.Pointer(request))
	var model *C.glm_model
	var chat *C.glm_chat
	var response *C.char
	status := C.glm_model_load(dir, nil, &model)
	if status == C.GLM_OK {
		status = C.glm_chat_new(model, nil, &chat)
	}
	if status == C.GLM_OK {
		status = C.glm_chat_complete(chat, request, nil, nil, &response)
	}
	if status != C.GLM_OK {
		fmt.Fprintln(os.Stderr, C.GoString(C.glm_status_name(status)), C.GoString(C.glm_last_error()))
		os.Exit(1)
	}
	fmt.Println(C.GoString(response)) // an OpenAI chat.completion object
	C.glm_free(unsafe.Pointer(response))
	C.glm_chat_free(chat)
	C.glm_model_free(model)
}
