//! Real processes for the scale-out tests: `redis-server` on a free port
//! (killable, restartable, with AOF when a test needs it) and `repairmatch
//! serve` replicas sharing it (or on an embedded store of their own), called
//! over real gRPC, with their Prometheus metrics scraped over real HTTP.

#![allow(dead_code)] // each test file uses part of this

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::catalog_service_client::CatalogServiceClient;
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;
use tonic::transport::Channel;

/// The `repairmatch` binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_repairmatch");

/// The ops key every replica's config accepts.
pub const OPS_KEY: &str = "rmk_test_ops";

/// A port nobody listens on now (bind, read, release).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// What a certificate from [`Pki::issue`] is for.
#[derive(Debug, Clone, Copy)]
pub enum Usage {
    /// A server's, for 127.0.0.1.
    Server,
    /// A client's, for mutual TLS.
    Client,
}

/// A throwaway PKI in a directory, made with the `openssl` command: CAs, and
/// certificates they sign, as PEM files named after them.
pub struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// Keeps its files in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned() }
    }

    fn openssl(&self, args: &[&str]) {
        let status = Command::new("openssl").args(args).current_dir(&self.dir).stderr(Stdio::null()).status();
        assert!(status.expect("openssl runs (apt-get install openssl)").success(), "openssl {args:?}");
    }

    /// A self-signed CA: `NAME.pem` and `NAME.key`.
    pub fn ca(&self, name: &str) -> PathBuf {
        let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
        let subject = format!("/CN=repairmatch test CA {name}");
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
        ]);
        self.dir.join(pem)
    }

    /// A certificate signed by CA `ca`: `NAME.pem` and `NAME.key`, (cert,
    /// key) returned.
    pub fn issue(&self, ca: &str, name: &str, usage: Usage) -> (PathBuf, PathBuf) {
        let (pem, key, csr, ext) =
            (format!("{name}.pem"), format!("{name}.key"), format!("{name}.csr"), format!("{name}.ext"));
        let extensions = match usage {
            Usage::Server => "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            Usage::Client => "extendedKeyUsage=clientAuth\n",
        };
        std::fs::write(self.dir.join(&ext), extensions).unwrap();
        let subject = format!("/CN={name}");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ]);
        let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
        (self.dir.join(pem), self.dir.join(key))
    }
}

/// A `redis-server` process of the test's own.
pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    aof: bool,
    /// Serves TLS only, with the certificates in `dir` (see [`Redis::start_tls`]).
    tls: bool,
    child: Option<Child>,
}

impl Redis {
    /// Starts one on a free port; with `aof`, every write is fsynced before
    /// Redis answers (`appendfsync always`).
    pub fn start(dir: &Path, aof: bool) -> Self {
        let mut redis = Self { port: free_port(), dir: dir.to_owned(), aof, tls: false, child: None };
        redis.spawn();
        redis
    }

    /// Starts one that speaks TLS only, with a fresh CA (`dir/ca.pem`) and a
    /// server certificate for 127.0.0.1 (see [`Pki`]).
    pub fn start_tls(dir: &Path) -> Self {
        let pki = Pki::new(dir);
        pki.ca("ca");
        pki.issue("ca", "server", Usage::Server);
        let mut redis = Self { port: free_port(), dir: dir.to_owned(), aof: false, tls: true, child: None };
        redis.spawn();
        redis
    }

    /// `rediss://127.0.0.1:PORT/0`.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.aof {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        if self.tls {
            let file = |name: &str| self.dir.join(name).display().to_string();
            command
                .args(["--port", "0", "--tls-port", &self.port.to_string(), "--tls-auth-clients", "no"])
                .args(["--tls-cert-file", &file("server.pem"), "--tls-key-file", &file("server.key")])
                .args(["--tls-ca-cert-file", &file("ca.pem")]);
        }
        self.child = Some(command.spawn().expect("redis-server starts (apt-get install redis-server)"));
        let started = Instant::now();
        while if self.tls { !self.tls_ready() } else { self.ping().is_err() } {
            assert!(started.elapsed() < Duration::from_secs(20), "redis-server did not answer on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A plain connection, for the test's own commands.
    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// Whether the TLS port accepts connections (the handshake is the
    /// replicas' to prove).
    fn tls_ready(&self) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
    }

    fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING").exec(&mut self.connection()?)
    }

    /// `kill -9`: no shutdown, no final save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (reading its AOF).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `repairmatch serve` process.
pub struct Replica {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    child: Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

/// A config for a replica of the catalog under `prefix` on `redis`.
pub fn replica_config(dir: &Path, name: &str, redis_url: &str, prefix: &str, extra: &str) -> PathBuf {
    config_file_with_metrics(dir, name, &redis_store(redis_url, prefix, extra), "", Some(free_port()))
}

/// The `[store]` table body of a replica on `redis`, under `prefix`, with
/// `extra` store keys.
pub fn redis_store(redis_url: &str, prefix: &str, extra: &str) -> String {
    format!(
        "kind = \"redis\"\nurl = \"{redis_url}\"\nkey_prefix = \"{prefix}\"\ncommand_timeout_ms = 300\n\
         feed_block_ms = 500\n{extra}"
    )
}

/// The `[store]` table body of a process on its own embedded store in `dir`.
pub fn embedded_store(dir: &Path) -> String {
    format!("kind = \"embedded\"\npath = \"{}\"\n", dir.join("catalog.redb").display())
}

/// A config file `name.toml` in `dir`: `store` is the body of its `[store]`
/// table, `tables` comes last (`[limits]`, more `[tenants.…]`). Anonymous
/// Find is on and the ops tenant has [`OPS_KEY`].
pub fn config_file(dir: &Path, name: &str, store: &str, tables: &str) -> PathBuf {
    config_file_with_metrics(dir, name, store, tables, None)
}

/// [`config_file`], serving metrics on `127.0.0.1:metrics_port` when given.
pub fn config_file_with_metrics(
    dir: &Path,
    name: &str,
    store: &str,
    tables: &str,
    metrics_port: Option<u16>,
) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    let hash = repairmatch::auth::key_hash(OPS_KEY);
    let metrics = metrics_port.map(|port| format!("metrics_listen = \"127.0.0.1:{port}\"\n")).unwrap_or_default();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_pause_ms = 0\n{metrics}\n[store]\n{store}\n\n[auth]\nallow_anonymous_find = true\n\n\
         [tenants.ops]\nrole = \"ops\"\nkey_sha256 = [\"{hash}\"]\n\n{tables}\n"
    );
    std::fs::write(&file, config).unwrap();
    file
}

/// The API key of test tenant `name`.
pub fn tenant_key(name: &str) -> String {
    format!("rmk_test_{name}")
}

/// A `[tenants.NAME]` table for a bank holding [`tenant_key`]`(name)`,
/// limited to `per_second` calls a second with bursts of `burst`.
pub fn limited_bank(name: &str, per_second: f64, burst: u32) -> String {
    let hash = repairmatch::auth::key_hash(&tenant_key(name));
    format!(
        "[tenants.{name}]\nrole = \"bank\"\nkey_sha256 = [\"{hash}\"]\n\
         rate_limit = {{ per_second = {per_second:?}, burst = {burst} }}\n\n"
    )
}

/// A request with tenant `name`'s key.
pub fn as_tenant<T>(name: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {}", tenant_key(name)).parse().unwrap());
    request
}

/// `GET /metrics` from `addr`, over a plain HTTP/1.1 connection.
pub fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of `series` (a metric name with its labels, as exposed) in a
/// scrape; 0 when absent, as a counter never incremented is.
pub fn metric(scraped: &str, series: &str) -> f64 {
    scraped.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

/// The `listen` field of a log line, text (`listen=ADDR` at the end) or
/// JSON (`"listen":"ADDR"`).
pub fn listen_address_in(line: &str) -> Option<SocketAddr> {
    let json = line.split("\"listen\":\"").nth(1).and_then(|rest| rest.split('"').next());
    let text = || line.rsplit("listen=").next().map(str::trim);
    json.or_else(text)?.parse().ok()
}

impl Replica {
    /// Starts `repairmatch serve --config FILE` and waits until it serves.
    pub fn start(config: &Path) -> Self {
        let mut child = Command::new(BINARY)
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            // The test's config decides, not an override in the test's environment.
            .env_remove("REPAIRMATCH_STORE__LOAD_SAMPLE_WHEN_EMPTY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let (send, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let mut replica =
            Self { addr: "127.0.0.1:1".parse().unwrap(), metrics_addr: None, child, lines, seen: Vec::new() };
        let line = replica.wait_for("serving gRPC");
        replica.metrics_addr =
            replica.seen.iter().find(|l| l.contains("serving metrics")).and_then(|l| listen_address_in(l));
        replica.addr = listen_address_in(&line).unwrap_or_else(|| panic!("an address in {line:?}"));
        replica
    }

    /// Waits (bounded) for a logged line containing `text`.
    pub fn wait_for(&mut self, text: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(text)) {
            return line.clone();
        }
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?} within 60 s; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Everything it logged so far.
    pub fn log(&mut self) -> &[String] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }

    /// Sends a signal (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    }

    /// A channel to it.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap()
    }

    /// A Find client.
    pub async fn finder(&self) -> RepairMatchServiceClient<Channel> {
        RepairMatchServiceClient::new(self.channel().await)
    }

    /// A catalog client (add the ops key to each call with [`as_ops`]).
    pub async fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel().await)
    }
}

impl Replica {
    /// SIGTERM, then its exit status and every line it logged.
    pub fn terminate(self) -> (std::process::ExitStatus, Vec<String>) {
        self.signal("TERM");
        self.wait()
    }

    /// Waits for it to exit: its exit status and every line it logged.
    pub fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().unwrap();
        // The reader thread ends with the pipe; collect what it still had.
        self.seen.extend(self.lines.try_iter());
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request with the ops key.
pub fn as_ops<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {OPS_KEY}").parse().unwrap());
    request
}

/// An active PAX walk-in repairer near People's Square, Shanghai.
pub fn center(id: &str, km_east: f64) -> pb::RepairCenter {
    pb::RepairCenter {
        id: id.into(),
        name: format!("Center {id}"),
        kind: pb::RepairCenterKind::ThirdParty as i32,
        location: Some(pb::LatLng { latitude: 31.2304, longitude: 121.4737 + km_east / 95.0 }),
        coverage: Some(pb::Coverage { radius_km: 400.0, polygon: None, country_codes: vec![] }),
        service_modes: vec![pb::ServiceMode::WalkIn as i32],
        brands: vec![pb::BrandSupport { brand: "PAX".into(), authorized: false, models: vec![] }],
        fault_categories: vec![pb::FaultCategory::Screen as i32],
        rating: Some(pb::Rating { average: 4.5, count: 10 }),
        active: true,
        ..Default::default()
    }
}

/// A Find for PAX screens at People's Square, `page_size` deep.
pub fn find(page_size: i32) -> pb::FindRepairCenterRequest {
    pb::FindRepairCenterRequest {
        location: Some(pb::LatLng { latitude: 31.2304, longitude: 121.4737 }),
        terminal: Some(pb::Terminal { brand: "PAX".into(), ..Default::default() }),
        fault: Some(pb::Fault { category: pb::FaultCategory::Screen as i32, description: String::new() }),
        max_distance_km: 20_000.0,
        page_size,
        ..Default::default()
    }
}

/// Upserts one center through `catalog` as ops.
pub async fn upsert(
    catalog: &mut CatalogServiceClient<Channel>,
    center: pb::RepairCenter,
) -> Result<u64, tonic::Status> {
    let response =
        catalog.upsert_repair_centers(as_ops(pb::UpsertRepairCentersRequest { centers: vec![center] })).await?;
    let response = response.into_inner();
    assert_eq!(response.results[0].outcome(), pb::ItemOutcome::Ok, "{response:?}");
    Ok(response.catalog_version)
}

/// Whether `id` is among what `finder` finds now.
pub async fn finds(finder: &mut RepairMatchServiceClient<Channel>, id: &str) -> bool {
    let response =
        finder.find_repair_center(pb::FindRepairCenterRequest { explain_center_ids: vec![id.into()], ..find(1) }).await;
    // Explained = not matched; matched ones are not explained.
    response.is_ok_and(|r| r.into_inner().exclusions.is_empty())
}

/// How many centers `finder` finds now.
pub async fn total(finder: &mut RepairMatchServiceClient<Channel>) -> i32 {
    finder.find_repair_center(find(1)).await.unwrap().into_inner().total_size
}

/// Waits until `check` holds, up to `limit`; how long it took.
pub async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

impl Replica {
    /// A counter or gauge from its `/metrics`, by its full name with labels
    /// (`repairmatch_cache_hits_total{tier="redis"}`); 0 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        metric(&scrape(self.metrics_addr.expect("the replica serves metrics")), name)
    }
}
