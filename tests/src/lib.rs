//! Helpers for the integration tests: a real repairmatch server on
//! `127.0.0.1:0` over a temporary embedded store, fixtures built as
//! `repairmatch.v1` messages (the public contract), and error decoding.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use repairmatch::auth::{self, Role};
use repairmatch::config::TenantConfig;
use repairmatch::{App, Config, cli, ndjson, reload};
use repairmatch_proto::v1 as pb;
use repairmatch_proto::v1::catalog_service_client::CatalogServiceClient;
use repairmatch_proto::v1::repair_match_service_client::RepairMatchServiceClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// The merchant most tests place: People's Square, Shanghai.
pub const SHANGHAI: (f64, f64) = (31.2304, 121.4737);

/// What a test server's store starts with.
#[derive(Debug, Default, Clone)]
pub struct Fixture {
    /// Centers.
    pub centers: Vec<pb::RepairCenter>,
    /// Brands.
    pub brands: Vec<pb::Brand>,
    /// Banks.
    pub banks: Vec<pb::Bank>,
}

impl Fixture {
    /// PAX and ICBC, plus the given centers.
    pub fn with_centers(centers: Vec<pb::RepairCenter>) -> Self {
        Self { centers, brands: vec![pax_brand()], banks: vec![icbc_bank()] }
    }
}

/// A running server and the store it owns.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The running app, for checks the API does not expose.
    pub app: App,
    _config_watcher: Option<reload::ConfigWatcher>,
    store_dir: tempfile::TempDir,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// The tenants every test server knows: (name, role, brands, profiles).
pub const TENANTS: &[(&str, Role, &[&str], &[&str])] = &[
    ("mfr-pax", Role::Manufacturer, &["PAX"], &[]),
    ("mfr-verifone", Role::Manufacturer, &["Verifone"], &[]),
    ("provider-fix", Role::Provider, &[], &[]),
    ("provider-other", Role::Provider, &[], &[]),
    ("icbc", Role::Bank, &[], &["default"]),
    ("ops", Role::Ops, &[], &[]),
];

/// The API key of a test tenant.
pub fn key_of(tenant: &str) -> String {
    format!("rmk_test_{tenant}")
}

/// A key no tenant holds (never issued, or revoked).
pub const REVOKED_KEY: &str = "rmk_test_revoked";

fn config_for(store_dir: &Path) -> Config {
    let mut config = Config::default();
    config.store.path = store_dir.join("catalog.redb");
    config.store.load_sample_when_empty = false;
    // No load balancer to wait for: stop at once.
    config.server.shutdown_pause_ms = 0;
    config.auth.allow_anonymous_find = true;
    config.profiles.insert("nearest".into(), repairmatch_core::RankingProfile::default());
    for (name, role, brands, profiles) in TENANTS {
        config.tenants.insert(
            (*name).into(),
            TenantConfig {
                role: *role,
                key_sha256: vec![auth::key_hash(&key_of(name))],
                brands: brands.iter().map(|b| (*b).into()).collect(),
                profiles: profiles.iter().map(|p| (*p).into()).collect(),
                default_profile: None,
                rate_limit: None,
            },
        );
    }
    config
}

/// Adds `authorization: Bearer <key>` to every call, when a key is set.
#[derive(Debug, Clone)]
pub struct BearerKey(pub Option<String>);

impl Interceptor for BearerKey {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(key) = &self.0 {
            let value = format!("Bearer {key}").parse().map_err(|_| tonic::Status::internal("bad test key"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A catalog client calling as a tenant (`None`: no key).
pub type CatalogClient = CatalogServiceClient<InterceptedService<Channel, BearerKey>>;

/// A match client calling with a key.
pub type KeyedMatchClient = RepairMatchServiceClient<InterceptedService<Channel, BearerKey>>;

/// Writes a fixture as NDJSON files and loads them with the real `import`.
pub fn import_fixture(store_dir: &Path, fixture: &Fixture) -> anyhow::Result<()> {
    let files = |name: &str| -> PathBuf { store_dir.join(name) };
    ndjson::write_lines(&files("centers.ndjson"), fixture.centers.iter())?;
    ndjson::write_lines(&files("brands.ndjson"), fixture.brands.iter())?;
    ndjson::write_lines(&files("banks.ndjson"), fixture.banks.iter())?;
    cli::import(
        &config_for(store_dir),
        (!fixture.centers.is_empty()).then(|| files("centers.ndjson")).as_deref(),
        (!fixture.brands.is_empty()).then(|| files("brands.ndjson")).as_deref(),
        (!fixture.banks.is_empty()).then(|| files("banks.ndjson")).as_deref(),
    )
}

impl TestServer {
    /// Imports `fixture` into a fresh store and starts a server on it.
    pub async fn start(fixture: &Fixture) -> Self {
        let store_dir = tempfile::tempdir().expect("temp dir");
        import_fixture(store_dir.path(), fixture).expect("fixture imports");
        Self::start_on(store_dir).await
    }

    /// Starts a server on an existing store directory.
    pub async fn start_on(store_dir: tempfile::TempDir) -> Self {
        let config = config_for(store_dir.path());
        Self::start_with(store_dir, config, Vec::new()).await
    }

    /// Imports `fixture` and serves with the test config as `adjust` leaves it.
    pub async fn start_adjusted(fixture: &Fixture, adjust: impl FnOnce(&mut Config)) -> Self {
        let store_dir = tempfile::tempdir().expect("temp dir");
        import_fixture(store_dir.path(), fixture).expect("fixture imports");
        let mut config = config_for(store_dir.path());
        adjust(&mut config);
        Self::start_with(store_dir, config, Vec::new()).await
    }

    /// Imports `fixture`, then serves with the config in `config_file` (its
    /// store settings replaced by the test store), watching it for changes.
    pub async fn start_watching(fixture: &Fixture, config_file: &Path) -> Self {
        Self::start_with_config_file(fixture, config_file, true).await
    }

    /// Like [`TestServer::start_watching`]; `watch` false leaves reloads to
    /// the caller (SIGHUP, or `app.reload_from`).
    pub async fn start_with_config_file(fixture: &Fixture, config_file: &Path, watch: bool) -> Self {
        Self::start_with_config_files(fixture, &[config_file.to_owned()], watch).await
    }

    /// Serves with the layered `config_files` (a later one overrides an
    /// earlier one), the store settings replaced by the test store; watching
    /// every file when `watch`.
    pub async fn start_with_config_files(fixture: &Fixture, config_files: &[PathBuf], watch: bool) -> Self {
        let store_dir = tempfile::tempdir().expect("temp dir");
        import_fixture(store_dir.path(), fixture).expect("fixture imports");
        let mut config = Config::load(config_files).expect("test config is valid");
        let defaults = config_for(store_dir.path());
        config.store = defaults.store;
        config.server.shutdown_pause_ms = defaults.server.shutdown_pause_ms;
        let watched = if watch { config_files.to_vec() } else { Vec::new() };
        Self::start_with(store_dir, config, watched).await
    }

    async fn start_with(store_dir: tempfile::TempDir, config: Config, watch: Vec<PathBuf>) -> Self {
        let app = tokio::task::spawn_blocking(move || App::open(config)).await.unwrap().expect("store opens");
        let _config_watcher = (!watch.is_empty()).then(|| reload::watch(app.clone(), watch).expect("watch config"));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(repairmatch::serve(listener, app.clone(), async {
            let _ = stopped.await;
        }));
        Self { addr, app, _config_watcher, store_dir, shutdown, task }
    }

    /// A client over a real socket.
    pub async fn client(&self) -> RepairMatchServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("connect");
        RepairMatchServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024)
    }

    /// A catalog client with this key (`None`: no key).
    pub async fn catalog_as(&self, key: Option<String>) -> CatalogClient {
        CatalogServiceClient::with_interceptor(self.channel().await, BearerKey(key)).max_decoding_message_size(64 << 20)
    }

    /// A catalog client as a test tenant.
    pub async fn catalog(&self, tenant: &str) -> CatalogClient {
        self.catalog_as(Some(key_of(tenant))).await
    }

    /// A match client with this key (`None`: no key).
    pub async fn client_as(&self, key: Option<String>) -> KeyedMatchClient {
        RepairMatchServiceClient::with_interceptor(self.channel().await, BearerKey(key))
    }

    /// A raw channel, for health and reflection clients.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect().await.expect("connect")
    }

    /// Stops the server, waits for it to release the store, and hands the
    /// store back for a restart.
    pub async fn stop(self) -> tempfile::TempDir {
        let Self { app, _config_watcher, store_dir, shutdown, task, .. } = self;
        drop(_config_watcher);
        let _ = shutdown.send(());
        task.await.expect("server task").expect("server ran cleanly");
        // The watcher thread may still hold the app for a moment; the store
        // lock goes with the last handle.
        drop(app);
        store_dir
    }
}

/// Publishes a config the way a Kubernetes ConfigMap update does: the files
/// go into a fresh `..<version>` directory, then a `..data` symlink is swapped
/// to it by an atomic rename. `dir/repairmatch.toml` links through `..data`.
pub fn publish_config_map(dir: &Path, version: &str, contents: &str) -> PathBuf {
    publish_mounted(dir, version, "repairmatch.toml", contents)
}

/// Publishes `name` in `dir` the way Kubernetes updates a mounted ConfigMap
/// or Secret (see [`publish_config_map`]).
pub fn publish_mounted(dir: &Path, version: &str, name: &str, contents: &str) -> PathBuf {
    let versioned = dir.join(format!("..{version}"));
    std::fs::create_dir_all(&versioned).expect("version dir");
    std::fs::write(versioned.join(name), contents).expect("mounted file");
    let staging = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&staging);
    std::os::unix::fs::symlink(format!("..{version}"), &staging).expect("staging link");
    std::fs::rename(&staging, dir.join("..data")).expect("atomic swap");
    let file = dir.join(name);
    if std::fs::symlink_metadata(&file).is_err() {
        std::os::unix::fs::symlink(format!("..data/{name}"), &file).expect("file link");
    }
    file
}

/// PAX, with a 12-month warranty.
pub fn pax_brand() -> pb::Brand {
    pb::Brand {
        name: "PAX".into(),
        warranty_months: 12,
        hotline: "+86 400 888 6600".into(),
        online_support_url: "https://support.pax.example/pos".into(),
        support_email: "pos-support@pax.example".into(),
        models: vec!["A920".into(), "A80".into()],
        owner: "mfr-pax".into(),
    }
}

/// ICBC.
pub fn icbc_bank() -> pb::Bank {
    pb::Bank {
        id: "icbc".into(),
        name: "Industrial and Commercial Bank of China".into(),
        hotline: "+86 95588".into(),
        online_support_url: "https://merchants.icbc.example/help".into(),
        support_email: "merchant-care@icbc.example".into(),
    }
}

/// CNY money.
pub fn cny(amount_minor_units: i64) -> pb::Money {
    pb::Money { currency_code: "CNY".into(), amount_minor_units }
}

/// An active independent PAX walk-in repairer at a point, covering 30 km,
/// repairing every fault, rated 4.5 from 100 reviews, screens at 100–200 CNY.
pub fn center(id: &str, latitude: f64, longitude: f64) -> pb::RepairCenter {
    let all_faults = (1..=9).collect();
    pb::RepairCenter {
        id: id.into(),
        name: format!("Test center {id}"),
        kind: pb::RepairCenterKind::ThirdParty as i32,
        owner: "provider-test".into(),
        location: Some(pb::LatLng { latitude, longitude }),
        address: "1 Test Road".into(),
        city: "Shanghai".into(),
        country_code: "CN".into(),
        coverage: Some(pb::Coverage { radius_km: 30.0, polygon: None, country_codes: vec![] }),
        service_modes: vec![pb::ServiceMode::WalkIn as i32],
        brands: vec![pb::BrandSupport { brand: "PAX".into(), authorized: false, models: vec![] }],
        fault_categories: all_faults,
        rating: Some(pb::Rating { average: 4.5, count: 100 }),
        prices: vec![pb::PriceRange {
            fault_category: pb::FaultCategory::Screen as i32,
            min: Some(cny(10_000)),
            max: Some(cny(20_000)),
        }],
        active: true,
        ..Default::default()
    }
}

/// A point `km` east of Shanghai's People's Square (along the parallel).
pub fn east_of_shanghai(km: f64) -> (f64, f64) {
    (SHANGHAI.0, SHANGHAI.1 + km / (111.32 * SHANGHAI.0.to_radians().cos()))
}

/// A center `km` east of the Shanghai merchant.
pub fn center_east(id: &str, km: f64) -> pb::RepairCenter {
    let (latitude, longitude) = east_of_shanghai(km);
    center(id, latitude, longitude)
}

/// A PAX screen repair for a merchant at People's Square.
pub fn find_request() -> pb::FindRepairCenterRequest {
    pb::FindRepairCenterRequest {
        location: Some(pb::LatLng { latitude: SHANGHAI.0, longitude: SHANGHAI.1 }),
        terminal: Some(pb::Terminal { brand: "PAX".into(), model: String::new(), serial_number: String::new() }),
        fault: Some(pb::Fault { category: pb::FaultCategory::Screen as i32, description: "cracked display".into() }),
        page_size: 100,
        ..Default::default()
    }
}

/// The ids of a response's matches, in order.
pub fn match_ids(response: &pb::FindRepairCenterResponse) -> Vec<String> {
    response.matches.iter().map(|m| m.center.as_ref().unwrap().id.clone()).collect()
}

/// Each field a status's `BadRequest` names, with its description.
pub fn bad_request_violations(status: &tonic::Status) -> Vec<(String, String)> {
    let details = status.get_error_details();
    details
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| (v.field.clone(), v.description.clone())).collect())
        .unwrap_or_default()
}

/// The fields a status's `BadRequest` names, and its `ErrorInfo` reason.
pub fn bad_request_fields(status: &tonic::Status) -> (Vec<String>, String) {
    let details = status.get_error_details();
    let fields =
        details.bad_request().map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect()).unwrap_or_default();
    let reason = details.error_info().map(|info| info.reason.clone()).unwrap_or_default();
    (fields, reason)
}
