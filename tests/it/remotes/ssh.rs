//! Pushing over SSH to a real OpenSSH server, as operators set it up.
