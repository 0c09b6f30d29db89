//! The `ponte` binary; see `ponte --help`.

fn main() -> std::process::ExitCode {
    ponte::main()
}
