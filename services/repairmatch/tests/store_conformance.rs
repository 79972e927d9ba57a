//! Every `CatalogStore` keeps the same promises: the same checks run on the
//! embedded store and on Redis (a real `redis-server` of the test's own).

mod support;

use repairmatch::config::{StoreConfig, StoreKind};
use repairmatch::store::{
    CatalogStore, CenterDelete, CenterUpsert, Changes, EmbeddedStore, ItemStatus, Precondition, RedisStore, WriteBatch,
};
use repairmatch_core::model::RepairCenter;
use support::Redis;

fn upsert(center: RepairCenter, etag: Option<&str>, owner: Option<&str>) -> CenterUpsert {
    CenterUpsert {
        center,
        precondition: Precondition { etag: etag.map(str::to_owned), owner: owner.map(str::to_owned) },
    }
}

fn owned_centers(count: usize, owner: &str) -> Vec<RepairCenter> {
    let mut centers = repairmatch_datagen::generate(count, 9).centers;
    for center in &mut centers {
        center.owner = owner.into();
    }
    centers
}

/// Runs `check` on a fresh embedded store and a fresh Redis store.
fn on_every_store(check: impl Fn(&dyn CatalogStore)) {
    let dir = tempfile::tempdir().unwrap();
    check(&EmbeddedStore::open(&dir.path().join("catalog.redb")).unwrap());
    let redis = Redis::start(dir.path(), false);
    let config = StoreConfig {
        kind: StoreKind::Redis,
        url: redis.url(),
        key_prefix: "conformance".into(),
        feed_max_len: 10,
        ..StoreConfig::default()
    };
    check(&RedisStore::new(&config).unwrap());
}

#[test]
fn a_bulk_load_commits_every_batch_at_once_or_nothing() {
    on_every_store(|store| {
        let sample = repairmatch_datagen::generate(30, 6);
        let mut owned = sample.centers[0].clone();
        owned.owner = "provider-a".into();
        store.apply(WriteBatch::load(vec![owned], vec![], vec![])).unwrap();

        let mut load = store.bulk_load().unwrap();
        load.add_centers(sample.centers[..20].to_vec()).unwrap();
        load.add_centers(sample.centers[20..].to_vec()).unwrap();
        assert_eq!(store.load().unwrap().centers.len(), 1, "nothing is visible before the commit");
        assert_eq!(load.commit(vec![], sample.banks.clone()).unwrap(), 2);
        let loaded = store.load().unwrap();
        assert_eq!((loaded.version, loaded.centers.len(), loaded.banks.len()), (2, 30, sample.banks.len()));
        assert!(loaded.centers.iter().all(|c| c.etag == "2" && c.update_time.is_some()));
        let replaced = loaded.centers.iter().find(|c| c.id == sample.centers[0].id).unwrap();
        assert_eq!(replaced.owner, "provider-a", "a stored center keeps its owner");
        let Changes::Since(changes) = store.changes_since(1).unwrap() else { panic!("a small load is listed") };
        assert_eq!(changes.centers.len(), 30);

        let mut abandoned = store.bulk_load().unwrap();
        abandoned.add_centers(repairmatch_datagen::generate(5, 7).centers).unwrap();
        drop(abandoned);
        let after = store.load().unwrap();
        assert_eq!((after.version, after.centers.len()), (2, 30), "a dropped load changes nothing");
    });
}

#[test]
fn a_batch_checks_each_items_etag_and_owner_and_keeps_owners() {
    on_every_store(|store| {
        assert!(store.is_empty().unwrap());
        let centers = owned_centers(3, "provider-a");
        assert_eq!(store.apply(WriteBatch::load(centers.clone(), vec![], vec![])).unwrap().version, 1);
        assert!(!store.is_empty().unwrap());

        let mut renamed = centers[0].clone();
        renamed.name = "Renamed".into();
        renamed.owner = "ops".into();
        let batch = WriteBatch {
            upserts: vec![
                upsert(renamed, Some("1"), Some("provider-a")),
                upsert(centers[1].clone(), Some("stale"), Some("provider-a")),
                upsert(centers[2].clone(), None, Some("provider-b")),
            ],
            deletes: vec![CenterDelete { id: "nowhere".into(), precondition: Precondition::default() }],
            ..WriteBatch::default()
        };
        let applied = store.apply(batch).unwrap();
        assert_eq!(applied.upserts, [ItemStatus::Applied, ItemStatus::StaleEtag("1".into()), ItemStatus::NotOwner]);
        assert_eq!(applied.deletes, [ItemStatus::NotFound]);
        assert_eq!(applied.version, 2);
        let written = &applied.changes.centers[0];
        assert_eq!(
            (written.name.as_str(), written.owner.as_str(), written.etag.as_str()),
            ("Renamed", "provider-a", "2")
        );

        let refused =
            WriteBatch { upserts: vec![upsert(centers[1].clone(), Some("9"), None)], ..WriteBatch::default() };
        assert_eq!(store.apply(refused).unwrap().version, 2, "a batch that writes nothing makes no version");
        let loaded = store.load().unwrap();
        assert_eq!((loaded.version, loaded.centers.len()), (2, 3));
        let stored = loaded.centers.iter().find(|c| c.id == centers[0].id).unwrap();
        assert_eq!((stored.name.as_str(), stored.owner.as_str()), ("Renamed", "provider-a"));

        let delete = CenterDelete {
            id: centers[1].id.clone(),
            precondition: Precondition { etag: Some("1".into()), owner: Some("provider-a".into()) },
        };
        let applied = store.apply(WriteBatch { deletes: vec![delete], ..WriteBatch::default() }).unwrap();
        assert_eq!((applied.deletes.as_slice(), applied.version), ([ItemStatus::Applied].as_slice(), 3));
    });
}

#[test]
fn changes_since_a_version_are_each_records_latest_state() {
    on_every_store(|store| {
        let sample = repairmatch_datagen::generate(5, 2);
        store.apply(WriteBatch::load(sample.centers.clone(), sample.brands.clone(), sample.banks.clone())).unwrap();
        let mut renamed = sample.centers[0].clone();
        renamed.name = "First rename".into();
        store.apply(WriteBatch::load(vec![renamed.clone()], vec![], vec![])).unwrap();
        renamed.name = "Second rename".into();
        store.apply(WriteBatch::load(vec![renamed], vec![], vec![])).unwrap();
        let delete = CenterDelete { id: sample.centers[1].id.clone(), precondition: Precondition::default() };
        store.apply(WriteBatch { deletes: vec![delete], ..WriteBatch::default() }).unwrap();

        let Changes::Since(changes) = store.changes_since(1).unwrap() else { panic!("history reaches back") };
        assert_eq!(changes.version, 4);
        assert_eq!(changes.centers.len(), 1);
        assert_eq!(changes.centers[0].name, "Second rename");
        assert_eq!(changes.deleted_center_ids, [sample.centers[1].id.clone()]);
        let Changes::Since(none) = store.changes_since(4).unwrap() else { panic!() };
        assert!(none.is_empty() && none.version == 4);
        let Changes::Since(waited) = store.wait_for_changes(2).unwrap() else { panic!() };
        assert_eq!(waited.version, 4, "a follower at 2 gets to 4");
    });
}

#[test]
fn a_follower_behind_a_bulk_load_reloads() {
    on_every_store(|store| {
        let bulk = repairmatch_datagen::generate(repairmatch::store::MAX_LISTED_KEYS + 1, 2);
        store.apply(WriteBatch::load(bulk.centers, vec![], vec![])).unwrap();
        assert!(matches!(store.changes_since(0).unwrap(), Changes::ReloadAll), "the bulk load is not listed");
        let center = repairmatch_datagen::generate(1, 3).centers.remove(0);
        store.apply(WriteBatch::load(vec![center], vec![], vec![])).unwrap();
        assert!(matches!(store.changes_since(1).unwrap(), Changes::Since(c) if c.centers.len() == 1));
        assert_eq!(store.load().unwrap().centers.len(), repairmatch::store::MAX_LISTED_KEYS + 1);
    });
}
