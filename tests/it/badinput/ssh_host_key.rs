//! An unknown ssh host key, against a tiny pure-Python SSH server that only does the key
//! exchange, with a control run proving a known key passes.

use super::*;

/// A pure-Python SSH server that does only the key exchange (curve25519-sha256, an ssh-ed25519
/// host key derived from a fixed seed, aes128-ctr + hmac-sha2-256), answers the `ssh-userauth`
/// service request and refuses every login. Enough for a client to reach its host-key check: it
/// logs `sent host key` when the client has verified the key-exchange signature and `tried to log
/// in` when the client accepted the host key. Prints `PORT BASE64-HOST-KEY`; exits when stdin
/// closes.
const SSH_KEX_SERVER_PY: &str = r#####"
# A minimal SSH server that only does the key exchange (curve25519-sha256, ssh-ed25519 host key),
# so that a client reaches its host-key check; pure Python (no third-party modules).
import base64, hashlib, hmac, os, socket, struct, sys, threading

log_path = sys.argv[1]
def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\n")

p = 2**255 - 19
q = 2**252 + 27742317777372353535851937790883648493
def inv(x): return pow(x, p - 2, p)
d = -121665 * inv(121666) % p
sqrt_m1 = pow(2, (p - 1) // 4, p)
def recover_x(y, sign):
    x2 = (y * y - 1) * inv(d * y * y + 1)
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p != 0:
        x = x * sqrt_m1 % p
    if (x & 1) != sign:
        x = p - x
    return x
gy = 4 * inv(5) % p
gx = recover_x(gy, 0)
G = (gx, gy, 1, gx * gy % p)
def add(P, Q):
    A, B = (P[1] - P[0]) * (Q[1] - Q[0]) % p, (P[1] + P[0]) * (Q[1] + Q[0]) % p
    C, D = 2 * P[3] * Q[3] * d % p, 2 * P[2] * Q[2] % p
    E, F, Gg, H = B - A, D - C, D + C, B + A
    return (E * F, Gg * H, F * Gg, E * H)
def mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = add(Q, P)
        P = add(P, P)
        s >>= 1
    return Q
def compress(P):
    zi = inv(P[2])
    x, y = P[0] * zi % p, P[1] * zi % p
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")
def expand(secret):
    h = hashlib.sha512(secret).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]
def ed_sign(secret, msg):
    a, prefix = expand(secret)
    A = compress(mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % q
    R = compress(mul(r, G))
    h = int.from_bytes(hashlib.sha512(R + A + msg).digest(), "little") % q
    return R + int.to_bytes((r + h * a) % q, 32, "little")
def x25519(k, u):
    k = bytearray(k); k[0] &= 248; k[31] &= 127; k[31] |= 64
    k = int.from_bytes(k, "little"); u = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        A = x2 + z2; AA = A * A; B = x2 - z2; BB = B * B; E = AA - BB
        C = x3 + z3; D = x3 - z3; DA = D * A; CB = C * B
        x3 = (DA + CB) ** 2 % p; z3 = x1 * (DA - CB) ** 2 % p
        x2 = AA * BB % p; z2 = E * (AA + 121665 * E) % p
    if swap:
        x2, z2 = x3, z3
    return (x2 * inv(z2) % p).to_bytes(32, "little")


def _gmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
        b >>= 1
    return r
SBOX = []
for _x in range(256):
    _i = next((y for y in range(1, 256) if _gmul(_x, y) == 1), 0)
    _s = _i
    for _k in range(1, 5):
        _s ^= ((_i << _k) | (_i >> (8 - _k))) & 0xFF
    SBOX.append(_s ^ 0x63)
def aes_round_keys(key):
    w = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _gmul(rcon, 2)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    return [sum(w[4 * r:4 * r + 4], []) for r in range(11)]
def aes_encrypt(rk, block):
    s = [a ^ b for a, b in zip(block, rk[0])]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[r + 4 * ((c + r) % 4)] for c in range(4) for r in range(4)]
        if rnd < 10:
            m = []
            for c in range(4):
                a0, a1, a2, a3 = s[4 * c:4 * c + 4]
                m += [_gmul(a0, 2) ^ _gmul(a1, 3) ^ a2 ^ a3, a0 ^ _gmul(a1, 2) ^ _gmul(a2, 3) ^ a3,
                      a0 ^ a1 ^ _gmul(a2, 2) ^ _gmul(a3, 3), _gmul(a0, 3) ^ a1 ^ a2 ^ _gmul(a3, 2)]
            s = m
        s = [a ^ b for a, b in zip(s, rk[rnd])]
    return bytes(s)

class Ctr:
    def __init__(self, key, iv):
        self.rk, self.n, self.buf = aes_round_keys(key), int.from_bytes(iv, "big"), b""
    def xor(self, data):
        while len(self.buf) < len(data):
            self.buf += aes_encrypt(self.rk, self.n.to_bytes(16, "big"))
            self.n = (self.n + 1) % (1 << 128)
        out = bytes(a ^ b for a, b in zip(data, self.buf))
        self.buf = self.buf[len(data):]
        return out

def sstr(b): return struct.pack(">I", len(b)) + b
def mpint(b):
    b = b.lstrip(b"\0")
    if b and b[0] & 0x80:
        b = b"\0" + b
    return sstr(b)
def namelist(*names): return sstr(",".join(names).encode())

HOST_SECRET = hashlib.sha256(b"sqlgit test host key").digest()
HOST_PUB = compress(mul(expand(HOST_SECRET)[0], G))
K_S = sstr(b"ssh-ed25519") + sstr(HOST_PUB)

class Conn:
    def __init__(self, sock):
        self.sock, self.seq_in, self.seq_out, self.keys = sock, 0, 0, None
    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out
    def send(self, payload):
        block = 16 if self.keys else 8
        pad = block - (5 + len(payload)) % block
        if pad < 4:
            pad += block
        packet = struct.pack(">IB", 1 + len(payload) + pad, pad) + payload + os.urandom(pad)
        if self.keys:
            mac = hmac.new(self.keys["mac_out"], struct.pack(">I", self.seq_out) + packet, hashlib.sha256).digest()
            packet = self.keys["out"].xor(packet) + mac
        self.sock.sendall(packet)
        self.seq_out += 1
    def recv(self):
        if self.keys:
            first = self.keys["in"].xor(self.recv_exact(16))
            length, pad = struct.unpack(">IB", first[:5])
            rest = self.keys["in"].xor(self.recv_exact(length + 4 - 16))
            self.recv_exact(32)
            body = (first + rest)[5:]
        else:
            length, pad = struct.unpack(">IB", self.recv_exact(5))
            body = self.recv_exact(length - 1)
        self.seq_in += 1
        return body[: length - 1 - pad]

def serve(sock):
    conn = Conn(sock)
    try:
        v_s = b"SSH-2.0-sqlgit_test_kex"
        sock.sendall(v_s + b"\r\n")
        while True:
            line = b""
            while not line.endswith(b"\n"):
                line += conn.recv_exact(1)
            if line.startswith(b"SSH-"):
                break
        v_c = line.rstrip(b"\r\n")
        i_s = (bytes([20]) + os.urandom(16) + namelist("curve25519-sha256", "curve25519-sha256@libssh.org")
               + namelist("ssh-ed25519") + namelist("aes128-ctr") * 2 + namelist("hmac-sha2-256") * 2
               + namelist("none") * 2 + namelist() * 2 + b"\0" + struct.pack(">I", 0))
        conn.send(i_s)
        i_c = None
        while True:
            pkt = conn.recv()
            if pkt[0] == 20:
                i_c = pkt
            elif pkt[0] == 30:
                q_c = pkt[5 : 5 + struct.unpack(">I", pkt[1:5])[0]]
                break
        secret = os.urandom(32)
        q_s = x25519(secret, (9).to_bytes(32, "little"))
        k = mpint(x25519(secret, q_c))
        h = hashlib.sha256(sstr(v_c) + sstr(v_s) + sstr(i_c) + sstr(i_s) + sstr(K_S)
                           + sstr(q_c) + sstr(q_s) + k).digest()
        sig = sstr(b"ssh-ed25519") + sstr(ed_sign(HOST_SECRET, h))
        conn.send(bytes([31]) + sstr(K_S) + sstr(q_s) + sstr(sig))
        conn.send(bytes([21]))
        log("sent host key to " + v_c.decode(errors="replace"))
        while conn.recv()[0] != 21:
            pass
        derive = lambda x: hashlib.sha256(k + h + x + h).digest()
        conn.keys = {"out": Ctr(derive(b"D")[:16], derive(b"B")[:16]), "mac_out": derive(b"F"),
                     "in": Ctr(derive(b"C")[:16], derive(b"A")[:16])}
        while True:
            pkt = conn.recv()
            log("client message %d" % pkt[0])
            if pkt[0] == 5:
                conn.send(bytes([6]) + sstr(b"ssh-userauth"))
            elif pkt[0] == 50:
                log("the client tried to log in: it accepted the host key")
                conn.send(bytes([51]) + namelist("publickey") + b"\0")
            elif pkt[0] == 1:
                break
    except Exception as e:
        log("connection ended: %r" % (e,))
    finally:
        sock.close()

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print(server.getsockname()[1], base64.b64encode(K_S).decode(), flush=True)
def accept_loop():
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
threading.Thread(target=accept_loop, daemon=True).start()
sys.stdin.buffer.read()
os._exit(0)
"#####;

/// The SSH server above, killed on drop.
struct SshKex {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    port: u16,
    host_key: String,
    log: PathBuf,
}

impl SshKex {
    fn start(env: &TestEnv) -> SshKex {
        let script = env.write("ssh-kex.py", SSH_KEX_SERVER_PY);
        let log = env.path("ssh-kex.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed for the SSH test server");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut words = line.split_whitespace();
        let port = words
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("the SSH test server did not print its port: {line:?}"));
        let host_key = words.next().unwrap_or_default().to_string();
        SshKex {
            child: Some(child),
            stdin,
            port,
            host_key,
            log,
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SshKex {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn remote_unknown_ssh_host_key() {
    let fx = Fx::new();
    let env = &fx.env;
    let server = SshKex::start(env);
    let url = format!("ssh://git@127.0.0.1:{}/x.git", server.port);
    let mut rows = Rows::new(env, 19, "remote-hostkey");
    rows.show_as(format!(":{}/", server.port), ":PORT/");
    let mut p = Problems::default();
    bad_remote(
        &fx,
        &mut rows,
        "unknown ssh host key (empty `~/.ssh/known_hosts`)",
        &url,
        &[],
        &["host", "key", "ssh://***@127.0.0.1"],
        &[],
        &mut p,
    );
    let log = server.log();
    p.check(log.contains("sent host key"), || {
        format!("the client never got the host key; server log:\n{log}")
    });
    p.check(!log.contains("tried to log in"), || {
        format!("the client logged in to an unknown host; server log:\n{log}")
    });

    // Control: with the key in known_hosts the client gets past the check (and fails to log in),
    // so the refusal above was the host-key check and not a broken test server.
    let ssh_dir = env.path(".home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(
        ssh_dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{} ssh-ed25519 {}\n",
            server.port, server.host_key
        ),
    )
    .unwrap();
    let run = sqlgit(
        env,
        &["push", "--repo", "app.sqlgit", "--history-remote", &url],
        &[],
    );
    let log = server.log();
    p.check(log.contains("tried to log in"), || {
        format!(
            "with the host key known, the client should try to log in; server log:\n{log}\n\
             sqlgit said: {}",
            run.stderr_str()
        )
    });
    p.check(
        run.code() == Some(1) && !run.stderr_str().contains("host"),
        || {
            format!(
                "with the host key known: {}\n{}",
                run.output.status,
                run.stderr_str()
            )
        },
    );
    p.finish();
}
