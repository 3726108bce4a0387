//! The `roomctl` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    roomctl::cmd::main()
}
