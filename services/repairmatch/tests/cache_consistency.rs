//! A replica's own write can get a version number past writes of other
//! replicas it has not applied yet. Its snapshot then carries that number
//! without holding all it stands for, and answers from it must not be cached
//! under it (another replica, at the same number with everything, would serve
//! them from the shared tier).

mod support;

use std::sync::Arc;

use repairmatch::App;
use repairmatch::auth::{Caller, Role, Tenant};
use repairmatch::config::{Config, StoreConfig, StoreKind};
use repairmatch::store::RedisStore;
use support::Redis;

fn ops() -> Tenant {
    Tenant { name: "ops".into(), role: Role::Ops, brand_keys: vec![], profiles: vec![], default_profile: None }
}

fn center(
    id: &str,
) -> (String, String, Result<repairmatch_core::model::RepairCenter, Vec<tonic_types::FieldViolation>>) {
    let mut center = repairmatch_datagen::generate(1, 4).centers.remove(0);
    center.id = id.into();
    ("centers[0]".into(), id.into(), Ok(center))
}

/// An app on `redis` that does not follow the feed: it sees only its own writes.
fn isolated_app(redis: &Redis) -> App {
    let store =
        StoreConfig { kind: StoreKind::Redis, url: redis.url(), key_prefix: "gap".into(), ..StoreConfig::default() };
    let config = Config { store: store.clone(), ..Config::default() };
    App::with_store(config, Arc::new(RedisStore::new(&store).unwrap())).unwrap()
}

#[tokio::test]
async fn a_snapshot_with_a_gap_in_its_versions_is_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let redis = Redis::start(dir.path(), false);
    let (a, b) = (isolated_app(&redis), isolated_app(&redis));
    let request = support::find(10);
    let caller = Caller::Tenant(Arc::new(ops()));
    let now = chrono::Utc::now();

    b.upsert_centers(&ops(), vec![center("from-b")]).unwrap();
    a.upsert_centers(&ops(), vec![center("from-a")]).unwrap();
    assert_eq!(a.catalog().version(), 2, "a's snapshot is numbered 2 but lacks b's version 1");
    for _ in 0..2 {
        a.find(&caller, &request, now).await.unwrap();
    }
    assert_eq!(a.metrics().find_computed.get(), 2, "nothing cached from the snapshot with a gap");
    let gapless = isolated_app(&redis);
    assert_eq!(gapless.catalog().version(), 2, "a replica loading now holds versions 1 and 2");
    for _ in 0..2 {
        gapless.find(&caller, &request, now).await.unwrap();
    }
    assert_eq!(gapless.metrics().find_computed.get(), 1, "its snapshot has no gap: cached");

    b.upsert_centers(&ops(), vec![center("from-b-2")]).unwrap();
    assert_eq!(b.catalog().version(), 3);
    for _ in 0..2 {
        b.find(&caller, &request, now).await.unwrap();
    }
}
