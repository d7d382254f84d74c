//! authdb's conformance suite (`authdb::conformance`) against PostgreSQL: every case on a
//! fresh schema of its own, all of them dropped at the end. Needs `AUTHDB_POSTGRES_URL`.

mod common;

use std::time::Instant;

#[test]
fn conformance_on_postgres() {
    let Some(url) = common::url("conformance_on_postgres") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    let started = Instant::now();
    authdb::conformance::run_all(|clock| {
        common::builder(&url, &schemas.fresh("conf"), clock)
            .connect()
            .expect("connect and create the schema")
    });
    eprintln!(
        "conformance on PostgreSQL: {} schemas in {:.1?}",
        schemas.count(),
        started.elapsed()
    );
}

#[test]
fn short_codes_on_postgres() {
    let Some(url) = common::url("short_codes_on_postgres") else {
        return;
    };
    let schemas = common::Schemas::new(&url);
    authdb::conformance::run_short_codes(|clock| {
        common::builder(&url, &schemas.fresh("codes"), clock)
            .allow_short_verification_tokens(authdb::conformance::SHORT_CODE_ATTEMPTS)
            .connect()
            .expect("connect and create the schema")
    });
}
