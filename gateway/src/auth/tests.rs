//! Authenticator cache, stale grace and rate charging, with an injected token source (the live
//! PostgreSQL path is tested in `tests/it/auth.rs`; a fake is used here only to fail on demand).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::*;
use crate::auth::store::Quota;

struct Fake {
    record: TokenRecord,
    key_id: String,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl TokenSource for Fake {
    fn lookup<'a>(&'a self, key_id: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Timeout(Duration::from_secs(1)));
            }
            Ok((key_id == self.key_id).then(|| self.record.clone()))
        })
    }
}

fn setup(cfg: AuthConfig) -> (Arc<Fake>, Authenticator, Credentials) {
    let t = token::generate();
    let fake = Arc::new(Fake {
        record: TokenRecord {
            tenant_id: 7,
            tenant: "acme".into(),
            active: true,
            salt: t.salt.to_vec(),
            secret_hash: t.secret_hash.to_vec(),
            grants: vec![Grant::parse("metrics.*").expect("grant")],
            quota: Quota {
                rows_per_second: Some(10),
                max_body_bytes: None,
            },
        },
        key_id: t.key_id.clone(),
        down: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
    });
    let auth = Authenticator::new(cfg, fake.clone());
    let creds = Credentials::Token(token::parse(&t.plain).expect("parse"));
    (fake, auth, creds)
}

fn cfg(ttl_ms: u64, grace_ms: u64) -> AuthConfig {
    AuthConfig {
        enabled: true,
        cache_ttl: Duration::from_millis(ttl_ms),
        stale_grace: Duration::from_millis(grace_ms),
        ..AuthConfig::default()
    }
}

#[tokio::test]
async fn valid_token_is_cached_for_the_ttl() {
    let (fake, auth, creds) = setup(cfg(60_000, 0));
    for _ in 0..5 {
        let t = auth.authenticate(&creds).await.expect("ok");
        assert_eq!(t.name, "acme");
        assert!(t.allows("metrics", "samples") && !t.allows("other", "samples"));
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn wrong_secret_unknown_key_and_missing_header_are_one_401() {
    let (_fake, auth, creds) = setup(cfg(60_000, 0));
    let Credentials::Token(mut p) = creds else {
        panic!("token")
    };
    p.secret = "A".repeat(43);
    assert_eq!(
        auth.authenticate(&Credentials::Token(p.clone()))
            .await
            .err(),
        Some(Denied::Unauthorized)
    );
    p.key_id = "0123456789abcdef".into();
    assert_eq!(
        auth.authenticate(&Credentials::Token(p)).await.err(),
        Some(Denied::Unauthorized)
    );
    assert_eq!(
        auth.authenticate(&Credentials::Missing).await.err(),
        Some(Denied::Unauthorized)
    );
}

#[tokio::test]
async fn known_tokens_survive_a_backend_outage_within_the_grace_only() {
    let (fake, auth, creds) = setup(cfg(20, 300));
    auth.authenticate(&creds).await.expect("warm");
    fake.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Past the TTL, backend down: the stale record is served.
    auth.authenticate(&creds).await.expect("stale ok");
    // An unknown token cannot be served from cache: 503, not 401.
    let other = Credentials::Token(token::parse(&token::generate().plain).expect("parse"));
    assert_eq!(
        auth.authenticate(&other).await.err(),
        Some(Denied::Unavailable)
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        auth.authenticate(&creds).await.err(),
        Some(Denied::Unavailable),
        "past the grace the token is no longer served"
    );
    fake.down.store(false, Ordering::SeqCst);
    auth.authenticate(&creds).await.expect("backend back");
}

#[tokio::test]
async fn revocation_takes_effect_after_the_ttl() {
    let t = token::generate();
    let (fake, _, _) = setup(cfg(20, 0));
    let mut record = fake.record.clone();
    record.salt = t.salt.to_vec();
    record.secret_hash = t.secret_hash.to_vec();
    let fake = Arc::new(Fake {
        record: TokenRecord {
            active: false,
            ..record
        },
        key_id: t.key_id.clone(),
        down: AtomicBool::new(false),
        calls: AtomicUsize::new(0),
    });
    let auth = Authenticator::new(cfg(20, 0), fake);
    let creds = Credentials::Token(token::parse(&t.plain).expect("parse"));
    assert_eq!(
        auth.authenticate(&creds).await.err(),
        Some(Denied::Unauthorized)
    );
}

#[tokio::test]
async fn charging_past_the_rate_gives_retry_after() {
    let (_fake, auth, creds) = setup(cfg(60_000, 0));
    let t = auth.authenticate(&creds).await.expect("ok");
    auth.charge(&t, 30).expect("first request passes");
    match auth.charge(&t, 1) {
        Err(GatewayError::QuotaExceeded { retry_after_secs }) => {
            assert_eq!(retry_after_secs, 2)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn system_databases_are_refused_even_without_auth() {
    assert!(matches!(
        authorize("system", "tables"),
        Err(GatewayError::Forbidden(_))
    ));
    assert!(authorize("metrics", "samples").is_ok());
}
