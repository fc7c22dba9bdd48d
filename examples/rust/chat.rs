//! chat: a streamed, thinking, tool-calling conversation from Rust, through libglm's C ABI (`extern "C"`,
//! no crates).
//!
//!     rustc -O examples/rust/chat.rs -L build/lib -l glm -C link-args=-Wl,-rpath,$PWD/build/lib -o chat-rs
//!     ./chat-rs MODEL_DIR ["question"]
//!
//! As examples/chat.c: streams the reasoning and the answer as they are generated; when the model calls
//! get_weather, runs it, sends the result back as a "tool" message and continues until the model answers.
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::Write;
use std::ptr;

// The part of include/glm.h this program uses.
#[allow(non_camel_case_types)]
type glm_status = i32;
const GLM_OK: glm_status = 0;
const GLM_API_VERSION: i32 = 2;
const GLM_EVENT_DELTA: i32 = 1;

#[repr(C)]
struct GlmEvent {
    kind: i32,
    chunk_json: *const c_char,
    delta_json: *const c_char,
}

enum GlmModel {}
enum GlmChat {}

type EventCallback = extern "C" fn(event: *const GlmEvent, user_data: *mut c_void) -> bool;

extern "C" {
    fn glm_api_version() -> i32;
    fn glm_last_error() -> *const c_char;
    fn glm_status_name(status: glm_status) -> *const c_char;
    fn glm_free(pointer: *mut c_void);
    fn glm_model_load(path: *const c_char, params: *const c_void, out: *mut *mut GlmModel) -> glm_status;
    fn glm_model_free(model: *mut GlmModel);
    fn glm_chat_new(model: *const GlmModel, params: *const c_void, out: *mut *mut GlmChat) -> glm_status;
    fn glm_chat_free(chat: *mut GlmChat);
    fn glm_chat_complete(chat: *mut GlmChat, request: *const c_char, callback: Option<EventCallback>,
                         user_data: *mut c_void, out_response: *mut *mut c_char) -> glm_status;
}

fn failure(what: &str, status: glm_status) -> String {
    unsafe {
        format!("{}: {}: {}", what, CStr::from_ptr(glm_status_name(status)).to_string_lossy(),
                CStr::from_ptr(glm_last_error()).to_string_lossy())
    }
}

/// A small JSON reader: enough for libglm's responses and events.
#[derive(Clone, Debug, PartialEq)]
enum Json { Null, Bool(bool), Number(String), Str(String), Array(Vec<Json>), Object(Vec<(String, Json)>) }

impl Json {
    fn parse(text: &str) -> Option<Json> {
        let mut parser = Parser { bytes: text.as_bytes(), at: 0 };
        let value = parser.value(0)?;
        parser.space();
        if parser.at == parser.bytes.len() { Some(value) } else { None }
    }
    fn get(&self, key: &str) -> Option<&Json> {
        match self { Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v), _ => None }
    }
    fn at(&self, index: usize) -> Option<&Json> {
        match self { Json::Array(items) => items.get(index), _ => None }
    }
    fn str(&self) -> Option<&str> { match self { Json::Str(s) => Some(s), _ => None } }
    fn items(&self) -> &[Json] { match self { Json::Array(items) => items, _ => &[] } }
    fn text(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.clone(),
            Json::Str(s) => quote(s),
            Json::Array(items) => format!("[{}]", items.iter().map(Json::text).collect::<Vec<_>>().join(", ")),
            Json::Object(fields) => format!("{{{}}}", fields.iter().map(|(k, v)| format!("{}: {}", quote(k), v.text()))
                                                           .collect::<Vec<_>>().join(", ")),
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Parser<'a> { bytes: &'a [u8], at: usize }

impl<'a> Parser<'a> {
    fn space(&mut self) { while self.at < self.bytes.len() && b" \t\r\n".contains(&self.bytes[self.at]) { self.at += 1; } }
    fn eat(&mut self, b: u8) -> bool {
        self.space();
        if self.bytes.get(self.at) == Some(&b) { self.at += 1; true } else { false }
    }
    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > 64 { return None; }
        self.space();
        let rest = &self.bytes[self.at..];
        for (word, value) in [("null", Json::Null), ("true", Json::Bool(true)), ("false", Json::Bool(false))] {
            if rest.starts_with(word.as_bytes()) { self.at += word.len(); return Some(value); }
        }
        match *rest.first()? {
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']') { return Some(Json::Array(items)); }
                loop {
                    items.push(self.value(depth + 1)?);
                    if self.eat(b']') { return Some(Json::Array(items)); }
                    if !self.eat(b',') { return None; }
                }
            }
            b'{' => {
                self.at += 1;
                let mut fields = Vec::new();
                if self.eat(b'}') { return Some(Json::Object(fields)); }
                loop {
                    self.space();
                    let key = self.string()?;
                    if !self.eat(b':') { return None; }
                    fields.push((key, self.value(depth + 1)?));
                    if self.eat(b'}') { return Some(Json::Object(fields)); }
                    if !self.eat(b',') { return None; }
                }
            }
            _ => {
                let start = self.at;
                while self.at < self.bytes.len() && b"+-0123456789.eE".contains(&self.bytes[self.at]) { self.at += 1; }
                if self.at == start { return None; }
                Some(Json::Number(String::from_utf8_lossy(&self.bytes[start..self.at]).into_owned()))
            }
        }
    }
    fn string(&mut self) -> Option<String> {
        if self.bytes.get(self.at) != Some(&b'"') { return None; }
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = *self.bytes.get(self.at)?;
            self.at += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.bytes.get(self.at)?;
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
                            self.at += 4;
                            let mut code = u32::from_str_radix(hex, 16).ok()?;
                            if (0xD800..0xDC00).contains(&code) && self.bytes.get(self.at..self.at + 2) == Some(b"\\u") {
                                let low = u32::from_str_radix(std::str::from_utf8(self.bytes.get(self.at + 2..self.at + 6)?).ok()?, 16).ok()?;
                                self.at += 6;
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let c = char::from_u32(code).unwrap_or('\u{FFFD}');
                            out.extend_from_slice(c.to_string().as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                other => out.push(other),
            }
        }
    }
}

/// Which part of the reply the stream is in, for the labels.
struct Stream { section: &'static str }

extern "C" fn on_event(event: *const GlmEvent, user_data: *mut c_void) -> bool {
    // SAFETY: libglm passes a valid event for the duration of the call, and user_data is the &mut Stream given
    // to glm_chat_complete below, alive for the whole call.
    let (event, stream) = unsafe { (&*event, &mut *(user_data as *mut Stream)) };
    if event.kind != GLM_EVENT_DELTA { return true; }
    let text = unsafe { CStr::from_ptr(event.delta_json) }.to_string_lossy();
    let Some(delta) = Json::parse(&text) else { return false };  // cancels the request
    if let Some(reasoning) = delta.get("reasoning_content").and_then(Json::str) {
        if stream.section != "reasoning" { print!("\n\x1b[2m[thinking] "); stream.section = "reasoning"; }
        print!("{}", reasoning);
    } else if let Some(content) = delta.get("content").and_then(Json::str) {
        if stream.section != "content" { print!("\x1b[0m\n[answer] "); stream.section = "content"; }
        print!("{}", content);
    } else if let Some(calls) = delta.get("tool_calls") {
        for call in calls.items() {
            let function = call.get("function");
            if let Some(name) = function.and_then(|f| f.get("name")).and_then(Json::str) {
                print!("\x1b[0m\n[tool call] {} ", name);
                stream.section = "tool";
            }
            if let Some(piece) = function.and_then(|f| f.get("arguments")).and_then(Json::str) { print!("{}", piece); }
        }
    }
    let _ = std::io::stdout().flush();
    true
}

fn get_weather(arguments: &str) -> String {
    let city = Json::parse(arguments).and_then(|a| a.get("city").and_then(Json::str).map(String::from));
    if city.as_deref() == Some("Paris") {
        r#"{"city": "Paris", "temperature": 18, "condition": "sunny"}"#.to_string()
    } else {
        r#"{"error": "unknown city"}"#.to_string()
    }
}

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather",
 "description": "Get the current weather in a city", "parameters": {"type": "object",
 "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]"#;

fn run(model_dir: &str, question: &str) -> Result<(), String> {
    let dir = CString::new(model_dir).map_err(|e| e.to_string())?;
    let mut model: *mut GlmModel = ptr::null_mut();
    let status = unsafe { glm_model_load(dir.as_ptr(), ptr::null(), &mut model) };
    if status != GLM_OK { return Err(failure("glm_model_load", status)); }
    let mut chat: *mut GlmChat = ptr::null_mut();
    let status = unsafe { glm_chat_new(model, ptr::null(), &mut chat) };
    if status != GLM_OK {
        unsafe { glm_model_free(model) };
        return Err(failure("glm_chat_new", status));
    }
    print!("[user] {}", question);
    let mut messages = vec![format!(r#"{{"role": "user", "content": {}}}"#, quote(question))];
    let mut result = Err("no answer after 4 turns".to_string());
    for _ in 0..4 {
        let request = format!(r#"{{"messages": [{}], "tools": {}, "temperature": 0, "max_tokens": 256}}"#,
                              messages.join(", "), TOOLS);
        let request = CString::new(request).map_err(|e| e.to_string())?;
        let mut stream = Stream { section: "" };
        let mut out: *mut c_char = ptr::null_mut();
        let status = unsafe {
            glm_chat_complete(chat, request.as_ptr(), Some(on_event), &mut stream as *mut Stream as *mut c_void, &mut out)
        };
        println!("\x1b[0m");
        if status != GLM_OK {
            unsafe { glm_free(out as *mut c_void) };
            result = Err(failure("glm_chat_complete", status));
            break;
        }
        let text = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
        unsafe { glm_free(out as *mut c_void) };
        let Some(response) = Json::parse(&text) else { result = Err("unparsable response".into()); break };
        let choice = response.get("choices").and_then(|c| c.at(0));
        let finish = choice.and_then(|c| c.get("finish_reason")).and_then(Json::str).unwrap_or("?").to_string();
        let usage = response.get("usage").map(Json::text).unwrap_or_default();
        println!("[finish {}, usage {}]", finish, usage);
        let Some(message) = choice.and_then(|c| c.get("message")) else { result = Err("no message".into()); break };
        messages.push(message.text());
        if finish != "tool_calls" { result = Ok(()); break; }
        for call in message.get("tool_calls").map(Json::items).unwrap_or(&[]) {
            let arguments = call.get("function").and_then(|f| f.get("arguments")).and_then(Json::str).unwrap_or("{}");
            let output = get_weather(arguments);
            println!("[tool result] {}", output);
            let id = call.get("id").map(Json::text).unwrap_or_else(|| "\"\"".into());
            messages.push(format!(r#"{{"role": "tool", "tool_call_id": {}, "content": {}}}"#, id, quote(&output)));
        }
    }
    unsafe {
        glm_chat_free(chat);
        glm_model_free(model);
    }
    result
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: {} MODEL_DIR [question]", args[0]);
        std::process::exit(2);
    }
    if unsafe { glm_api_version() } != GLM_API_VERSION {
        eprintln!("header/library API mismatch");
        std::process::exit(1);
    }
    let question = if args.len() > 2 { args[2..].join(" ") } else { "What is the weather in Paris?".to_string() };
    if let Err(message) = run(&args[1], &question) {
        eprintln!("{}", message);
        std::process::exit(1);
    }
}
