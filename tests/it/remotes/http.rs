//! Pushing over HTTP to real web servers and a second git server implementation.
