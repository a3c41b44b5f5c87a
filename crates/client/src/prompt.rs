//! The password prompt of etcd's tools (`speakeasy.Ask` in etcdctl and the benchmark),
//! for chorusctl and chorus-bench (feature `prompt`): the prompt on standard output, the
//! terminal's echo off while one line is read from standard input (a byte at a time, so
//! the rest of the input stays for the command), a newline on standard output, and the
//! line trimmed of white space. Standard input need not be a terminal: `echo pw |
//! chorusctl --user root get k` works as with etcdctl.

use std::io::Write;

/// The original terminal settings while echo is off, for the signal handler.
static mut SAVED: Option<libc::termios> = None;

/// Echo off on standard input while alive (when it is a terminal).
struct EchoOff {
    saved: libc::termios,
}

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios owned here; the handler
        // reads SAVED only after it is written, and it is written before the handlers are
        // installed.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None; // not a terminal: nothing to hide
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            SAVED = Some(saved);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(sig, restore_and_die as *const () as libc::sighandler_t);
            }
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &quiet) != 0 {
                return None;
            }
            Some(EchoOff { saved })
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the settings read in `new`; then the default signal actions.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSAFLUSH, &self.saved);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

/// A signal while echo is off: echo back on, then die of the signal as before.
extern "C" fn restore_and_die(sig: libc::c_int) {
    // SAFETY: tcsetattr, signal and raise are async-signal-safe; SAVED was written before
    // this handler was installed and is not written while it is.
    unsafe {
        if let Some(saved) = *std::ptr::addr_of!(SAVED) {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &saved);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// One line of standard input, read a byte at a time up to `\n` or end of input.
fn read_line() -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    // Bounded: a password line longer than 64 KiB is cut there, as no password is.
    while line.len() < 64 * 1024 {
        let mut b = 0u8;
        // SAFETY: reads at most one byte into `b`.
        let n = unsafe { libc::read(libc::STDIN_FILENO, (&mut b as *mut u8).cast(), 1) };
        match n {
            0 => break,
            1 if b == b'\n' => break,
            1 => line.push(b),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(line)
}

/// `speakeasy.Ask(prompt)`; `Err` is etcdctl's text of a failed read.
pub fn ask_password(prompt: &str) -> Result<String, String> {
    let mut out = std::io::stdout();
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let line = {
        let _echo_off = EchoOff::new();
        read_line()
    };
    let _ = writeln!(out);
    let _ = out.flush();
    match line {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).trim().to_owned()),
        Err(e) => Err(format!("failed during password entry: {e}")),
    }
}
