//! The connection pool: r2d2 with a manager of our own, so that each pooled connection
//! carries its session settings (`search_path`, `statement_timeout`) and a cache of the
//! statements it has prepared.

use std::collections::HashMap;

use postgres::{Client, NoTls, Statement};

/// One pooled connection and the statements prepared on it (a statement belongs to the
/// connection it was prepared on, so the cache lives and dies with it).
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) stmts: Stmts,
}

/// Prepared statements by SQL text. Every statement authdb runs is a `&'static str`, so the
/// cache holds at most a few dozen entries per connection.
#[derive(Default)]
pub(crate) struct Stmts(HashMap<&'static str, Statement>);

impl Stmts {
    pub(crate) fn get(&self, sql: &'static str) -> Option<Statement> {
        self.0.get(sql).cloned()
    }

    pub(crate) fn put(&mut self, sql: &'static str, st: Statement) {
        self.0.insert(sql, st);
    }
}

/// Opens one connection with the configured TLS connector (or none).
pub(crate) type Connector =
    Box<dyn Fn(&postgres::Config) -> Result<Client, postgres::Error> + Send + Sync>;

/// The connector without TLS.
pub(crate) fn no_tls() -> Connector {
    Box::new(|config| config.connect(NoTls))
}

/// Makes, checks and recognizes broken connections for r2d2.
pub(crate) struct Manager {
    pub(crate) config: postgres::Config,
    pub(crate) connector: Connector,
    /// Run on every new connection: `SET search_path ...; SET statement_timeout ...`.
    pub(crate) init: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = (self.connector)(&self.config)?;
        client.batch_execute(&self.init)?;
        Ok(Conn {
            client,
            stmts: Stmts::default(),
        })
    }

    /// An empty query: one round trip proves the connection still answers.
    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(drop)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}
