//! ALSA prints its own errors straight to stderr (`ALSA lib confmisc.c:855:
//! (parse_card) cannot find card '0'` and a dozen more) when a Pi has no
//! sound card or the default device is busy. In the journal those raw lines
//! look like a crash. This module replaces ALSA's printer: each message
//! becomes one `debug` line under target `media`, and roomctl's own warning
//! (`no audio output (...)`) says what it means for the room.

/// Installs the handler once per process. Harmless to call again.
pub fn silence() {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    imp::install();
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod imp {
    use std::ffi::{CStr, c_char, c_int};
    use std::sync::Once;

    /// The handler, with ALSA's fixed parameters only.
    type Fixed = unsafe extern "C" fn(*const c_char, c_int, *const c_char, c_int, *const c_char);

    unsafe extern "C" fn handler(
        file: *const c_char,
        line: c_int,
        function: *const c_char,
        err: c_int,
        _fmt: *const c_char,
    ) {
        let text = |p: *const c_char| {
            if p.is_null() {
                String::from("?")
            } else {
                // SAFETY: ALSA passes NUL-terminated static strings.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        let why = if err == 0 {
            String::new()
        } else {
            // SAFETY: snd_strerror returns a static string for any code.
            text(unsafe { alsa_sys::snd_strerror(err) })
        };
        tracing::debug!(target: "media", "ALSA {}:{line} {}: {why}", text(file), text(function));
    }

    pub fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            // ALSA declares the handler variadic (a printf format and its
            // arguments follow `fmt`). Stable Rust cannot define a variadic
            // function, so this one takes the fixed parameters only. On the
            // SysV x86-64 and Linux AArch64 calling conventions (the only
            // targets this is compiled for), the fixed arguments of a
            // variadic call are passed exactly as in a plain call, and the
            // caller cleans up, so ignoring the rest is sound.
            // SAFETY: same size and ABI for the arguments read (see above).
            let h = unsafe {
                std::mem::transmute::<
                    Fixed,
                    unsafe extern "C" fn(
                        *const c_char,
                        c_int,
                        *const c_char,
                        c_int,
                        *const c_char,
                        ...
                    ),
                >(handler)
            };
            // SAFETY: sets a process-wide function pointer; called once.
            unsafe {
                alsa_sys::snd_lib_error_set_handler(Some(h));
            }
        });
    }
}
