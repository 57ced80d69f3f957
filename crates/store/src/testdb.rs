//! Test support: a throwaway PostgreSQL database per test.
//!
//! `TMIRROR_TEST_DATABASE_URL` names a PostgreSQL server and a role allowed to create
//! databases (`scripts/pg-cluster.sh` starts one). Each [`TestDatabase`] is a new database on
//! that server, dropped — together with any connection still open to it — when the guard is
//! dropped, also when the test fails.

use sqlx::{Connection, Executor, PgConnection};

/// The variable that names the test server.
pub const ENV: &str = "TMIRROR_TEST_DATABASE_URL";

/// A database created for one test; dropped with the guard.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let end = base[authority_start..]
        .find('/')
        .map(|i| authority_start + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl TestDatabase {
    /// The server's URL from [`ENV`], if set (and not empty).
    pub fn server_url() -> Option<String> {
        std::env::var(ENV).ok().filter(|u| !u.is_empty())
    }

    /// A fresh, empty database; `None` when [`ENV`] is not set. Panics when the server named
    /// there cannot be used: a test asked to run on PostgreSQL must not pass without it.
    pub async fn create() -> Option<TestDatabase> {
        let admin_url = Self::server_url()?;
        let name = format!("tmirror_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{ENV} is set but its server cannot be reached: {e}"));
        conn.execute(&*format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime (or while unwinding): do the async work on a thread
        // with a runtime of its own, and wait for it.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            rt.block_on(async move {
                let mut conn = PgConnection::connect(&admin_url).await?;
                conn.execute(&*format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                conn.close().await
            })
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("could not drop the test database {}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_is_the_path() {
        use super::with_database as w;
        assert_eq!(
            w("postgres://u:p@h:5/postgres", "x"),
            "postgres://u:p@h:5/x"
        );
        assert_eq!(w("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            w("postgresql://u@h/db?sslmode=disable", "x"),
            "postgresql://u@h/x?sslmode=disable"
        );
    }
}
