// rustc answer.rs -l glm -L PREFIX/lib && ./answer MODEL_DIR
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr::null_mut;

extern "C" {
    fn glm_model_load(path: *const c_char, params: *const c_void, out: *mut *mut c_void) -> i32;
    fn glm_chat_new(model: *const c_void, params: *const c_void, out: *mut *mut c_void) -> i32;
    fn glm_chat_complete(chat: *mut c_void, request: *const c_char, callback: *const c_void,
                         user_data: *mut c_void, out: *mut *mut c_char) -> i32;
    fn glm_last_error() -> *const c_char;
    fn glm_free(pointer: *mut c_void);
    fn glm_chat_free(chat: *mut c_void);
    fn glm_model_free(model: *mut c_void);
}

fn main() {
    let dir = CString::new(std::env::args().nth(1).expect("usage: answer MODEL_DIR")).unwrap();
    let request = CString::new(r#"{"messages": [{"role": "user", "content": "Hello!"}], "temperature": 0}"#).unwrap();
    let (mut model, mut chat, mut response) = (null_mut(), null_mut(), null_mut());
    unsafe {
        let mut status = glm_model_load(dir.as_ptr(), std::ptr::null(), &mut model);
        if status == 0 { status = glm_chat_new(model, std::ptr::null(), &mut chat); }
        if status == 0 { status = glm_chat_complete(chat, request.as_ptr(), std::ptr::null(), null_mut(), &mut response); }
        if status == 0 {
            println!("{}", CStr::from_ptr(response).to_string_lossy()); // an OpenAI chat.completion object
        } else {
            eprintln!("{}", CStr::from_ptr(glm_last_error()).to_string_lossy());
        }
        glm_free(response as *mut c_void);
        glm_chat_free(chat);
        glm_model_free(model);
        std::process::exit(status);
    }
}
