//! A private OpenSSH server on 127.0.0.1 for the SSH remote tests (see `Sshd`).
