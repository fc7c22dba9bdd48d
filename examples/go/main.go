// chat: a streamed, thinking, tool-calling conversation from Go, through libglm's C ABI with cgo.
//
//	go run ./examples/go MODEL_DIR ["question"]   (after `make`; see the cgo flags below)
//
// As examples/chat.c: streams the reasoning and the answer as they are generated; when the model calls
// get_weather, runs it, sends the result back as a "tool" message and continues until the model answers.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../build/lib -lglm -Wl,-rpath,${SRCDIR}/../../build/lib
#include <stdlib.h>
#include <glm.h>

// Implemented in Go below (//export); libglm calls it for every streamed event.
extern _Bool goOnEvent(glm_event *event, void *user_data);
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/cgo"
	"strings"
	"unsafe"
)

// The tool as JSON text: its key order reaches the prompt as written (a Go map would sort the keys).
var tools = json.RawMessage(`[{"type": "function", "function": {"name": "get_weather",
 "description": "Get the current weather in a city", "parameters": {"type": "object",
 "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]`)

type toolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type message struct {
	Role             string     `json:"role"`
	Content          *string    `json:"content"`
	ReasoningContent *string    `json:"reasoning_content,omitempty"`
	ToolCalls        []toolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
}

type response struct {
	Choices []struct {
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	} `json:"choices"`
	Usage json.RawMessage `json:"usage"`
}

// What the event callback prints: which part of the reply it is in.
type stream struct{ section string }

//export goOnEvent
func goOnEvent(event *C.glm_event, userData unsafe.Pointer) C._Bool {
	s := (*(*cgo.Handle)(userData)).Value().(*stream)
	if event.kind != C.GLM_EVENT_DELTA {
		return true
	}
	var delta struct {
		ReasoningContent string `json:"reasoning_content"`
		Content          string `json:"content"`
		ToolCalls        []struct {
			Function struct {
				Name      string `json:"name"`
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal([]byte(C.GoString(event.delta_json)), &delta); err != nil {
		return false // cancels the request
	}
	switch {
	case delta.ReasoningContent != "":
		if s.section != "reasoning" {
			fmt.Print("\n\x1b[2m[thinking] ")
			s.section = "reasoning"
		}
		fmt.Print(delta.ReasoningContent)
	case delta.Content != "":
		if s.section != "content" {
			fmt.Print("\x1b[0m\n[answer] ")
			s.section = "content"
		}
		fmt.Print(delta.Content)
	default:
		for _, call := range delta.ToolCalls {
			if call.Function.Name != "" {
				fmt.Print("\x1b[0m\n[tool call] ", call.Function.Name, " ")
				s.section = "tool"
			}
			fmt.Print(call.Function.Arguments)
		}
	}
	return true
}

func getWeather(arguments string) string {
	var args struct{ City string }
	if json.Unmarshal([]byte(arguments), &args) == nil && args.City == "Paris" {
		return `{"city": "Paris", "temperature": 18, "condition": "sunny"}`
	}
	return `{"error": "unknown city"}`
}

func failure(what string, status C.glm_status) error {
	return fmt.Errorf("%s: %s: %s", what, C.GoString(C.glm_status_name(status)), C.GoString(C.glm_last_error()))
}

func run(modelDir, question string) error {
	cDir := C.CString(modelDir)
	defer C.free(unsafe.Pointer(cDir))
	var model *C.glm_model
	if status := C.glm_model_load(cDir, nil, &model); status != C.GLM_OK {
		return failure("glm_model_load", status)
	}
	defer C.glm_model_free(model)
	var chat *C.glm_chat
	if status := C.glm_chat_new(model, nil, &chat); status != C.GLM_OK {
		return failure("glm_chat_new", status)
	}
	defer C.glm_chat_free(chat)

	fmt.Print("[user] ", question)
	messages := []message{{Role: "user", Content: &question}}
	for turn := 0; turn < 4; turn++ {
		request, _ := json.Marshal(map[string]any{"messages": messages, "tools": tools, "temperature": 0, "max_tokens": 256})
		cRequest := C.CString(string(request))
		handle := cgo.NewHandle(&stream{})
		var out *C.char
		// &handle is Go memory without Go pointers in it, and libglm keeps it only during the call: cgo allows it.
		status := C.glm_chat_complete(chat, cRequest, C.glm_event_callback(C.goOnEvent), unsafe.Pointer(&handle), &out)
		handle.Delete()
		C.free(unsafe.Pointer(cRequest))
		fmt.Print("\x1b[0m\n")
		if status != C.GLM_OK {
			C.glm_free(unsafe.Pointer(out))
			return failure("glm_chat_complete", status)
		}
		var reply response
		err := json.Unmarshal([]byte(C.GoString(out)), &reply)
		C.glm_free(unsafe.Pointer(out))
		if err != nil || len(reply.Choices) == 0 {
			return fmt.Errorf("unexpected response: %v", err)
		}
		choice := reply.Choices[0]
		fmt.Printf("[finish %s, usage %s]\n", choice.FinishReason, reply.Usage)
		messages = append(messages, choice.Message)
		if choice.FinishReason != "tool_calls" {
			return nil
		}
		for _, call := range choice.Message.ToolCalls {
			result := getWeather(call.Function.Arguments)
			fmt.Println("[tool result]", result)
			messages = append(messages, message{Role: "tool", Content: &result, ToolCallID: call.ID})
		}
	}
	return fmt.Errorf("no answer after 4 turns")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: chat MODEL_DIR [question]")
		os.Exit(2)
	}
	question := "What is the weather in Paris?"
	if len(os.Args) > 2 {
		question = strings.Join(os.Args[2:], " ")
	}
	if C.glm_api_version() != C.GLM_API_VERSION {
		fmt.Fprintln(os.Stderr, "header/library API mismatch")
		os.Exit(1)
	}
	if err := run(os.Args[1], question); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
