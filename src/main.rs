fn main() -> std::process::ExitCode {
    sqlgit::main_with_exit_code()
}
