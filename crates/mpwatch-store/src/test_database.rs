//! For tests only: a new, empty database on the PostgreSQL cluster named by
//! `MPWATCH_TEST_POSTGRES_URL` (`.ci/run` starts one with scripts/postgres-throwaway.sh),
//! dropped when the guard is. Without that variable, PostgreSQL tests skip.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test cluster's database.
pub const URL_VARIABLE: &str = "MPWATCH_TEST_POSTGRES_URL";

/// A database of its own for one test.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (and a line on stderr saying the test skipped)
    /// when `MPWATCH_TEST_POSTGRES_URL` is not set. Panics when it is set but the
    /// cluster does not answer: a test cluster that was asked for must be there.
    pub fn create(test: &str) -> Option<TestDatabase> {
        let Ok(admin_url) = std::env::var(URL_VARIABLE) else {
            eprintln!(
                "skipped {test}: {URL_VARIABLE} is not set (start a cluster with `eval \"$(scripts/postgres-throwaway.sh start)\"`)"
            );
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("mpwatch_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|error| panic!("{URL_VARIABLE} is set but the cluster does not answer: {error}"));
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("creating a test database");
        let url = with_database(&admin_url, &name);
        Some(TestDatabase { admin_url, name, url })
    }

    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = head.split_once("://").unwrap_or(("postgresql", head));
    let authority = rest.split_once('/').map_or(rest, |(authority, _)| authority);
    format!("{scheme}://{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            super::with_database("postgresql:///mpwatch?host=/tmp/pg&port=5&user=postgres", "t1"),
            "postgresql:///t1?host=/tmp/pg&port=5&user=postgres"
        );
        assert_eq!(super::with_database("postgres://u:p@h:5432/db", "t2"), "postgres://u:p@h:5432/t2");
        assert_eq!(super::with_database("postgres://u@h", "t3"), "postgres://u@h/t3");
    }
}
