//! `chgate tenant`: the gateway's tenants, tokens, grants and quotas in PostgreSQL.
//!
//! Talks to the topology's PostgreSQL (password from its secret reference). Tokens are printed
//! once, when created; only their salted hashes are stored.

use std::time::Duration;

use anyhow::Context as _;
use chgate_gateway::auth::store::{self, Grant, PgSettings, Quota};
use chgate_topology::LoadedTopology;
use clap::{Args, Subcommand};

/// `chgate tenant …`. The tables come from `chgate migrate up` (PostgreSQL side).
#[derive(Debug, Args)]
pub struct TenantArgs {
    /// PostgreSQL database holding the tenants' tables (default: the topology's
    /// `postgres.database`; must match the gateway's `[auth] postgres_database`).
    #[arg(long, global = true)]
    pg_database: Option<String>,
    #[command(subcommand)]
    command: TenantCommand,
}

/// Tenant subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant with its grants and quota, and print its first token (shown only now).
    ///
    /// Example: chgate tenant create acme --allow metrics.* --rows-per-second 50000
    Create {
        /// Tenant name: 1-64 of a-z 0-9 _ -, starting with a letter or digit.
        name: String,
        /// Table the tenant may write, `DATABASE.TABLE` or `DATABASE.*` (repeatable). Prometheus,
        /// Influx and OTLP writes need the samples and series tables (e.g. `metrics.*`).
        #[arg(long = "allow", value_name = "DB.TABLE", required = true)]
        allow: Vec<String>,
        /// Rows per second the tenant may send (429 with Retry-After above). Default: the
        /// gateway's `[auth] default_rows_per_second` (unlimited unless set).
        #[arg(long)]
        rows_per_second: Option<u64>,
        /// Largest request body in bytes after decompression (413 above). Default: the gateway's
        /// `max_body_bytes`.
        #[arg(long)]
        max_body_bytes: Option<u64>,
    },
    /// List tenants: state, active token key ids (the public half), grants, quotas.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one token (--key-id) or the whole tenant (every token, tenant disabled). Gateways
    /// stop accepting it within their `[auth] cache_ttl`.
    Revoke {
        /// Tenant name.
        name: String,
        /// Key id of one token (the 16 hex characters after `chg_`, see `chgate tenant list`).
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Create another token for an existing tenant and print it (shown only now).
    Token {
        /// Tenant name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        description: String,
        /// Expire after this long, e.g. `90d`, `12h` (default: never).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
}

/// What to do, parsed and validated before connecting.
#[derive(Debug)]
enum Plan {
    Create {
        name: String,
        grants: Vec<Grant>,
        quota: Quota,
    },
    List {
        json: bool,
    },
    Revoke {
        name: String,
        key_id: Option<String>,
    },
    Token {
        name: String,
        description: String,
        expires_in: Option<Duration>,
    },
}

fn plan(cmd: TenantCommand) -> anyhow::Result<Plan> {
    Ok(match cmd {
        TenantCommand::Create {
            name,
            allow,
            rows_per_second,
            max_body_bytes,
        } => {
            let grants = allow
                .iter()
                .map(|g| Grant::parse(g).map_err(anyhow::Error::msg))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if rows_per_second == Some(0) || max_body_bytes == Some(0) {
                anyhow::bail!("--rows-per-second and --max-body-bytes must be at least 1");
            }
            Plan::Create {
                name,
                grants,
                quota: Quota {
                    rows_per_second,
                    max_body_bytes,
                },
            }
        }
        TenantCommand::List { json } => Plan::List { json },
        TenantCommand::Revoke { name, key_id } => Plan::Revoke { name, key_id },
        TenantCommand::Token {
            name,
            description,
            expires_in,
        } => Plan::Token {
            name,
            description,
            expires_in,
        },
    })
}

fn print_token(name: &str, token: &chgate_gateway::auth::token::NewToken) {
    println!("tenant `{name}`: token (key id {}):", token.key_id);
    println!("{}", token.plain);
    eprintln!(
        "Store it now: it is not shown again and only its salted hash is kept. Send it as \
         `Authorization: Bearer <token>` (or as the Basic-auth password)."
    );
}

/// Runs `chgate tenant …`.
pub async fn run(args: TenantArgs, loaded: &LoadedTopology) -> anyhow::Result<()> {
    let plan = plan(args.command)?;
    let pg = PgSettings::from_topology(loaded, args.pg_database.as_deref())?;
    let mut client = pg
        .connect()
        .await
        .context("the tenants live in PostgreSQL; is the stack up (`chgate local up`)?")?;
    let missing: bool = client
        .query_one("SELECT to_regclass('gateway_grants') IS NULL", &[])
        .await
        .context("checking for the tenants' tables")?
        .get(0);
    if missing {
        anyhow::bail!(
            "the tenants' tables do not exist in PostgreSQL database `{}`; run `chgate migrate up` first",
            pg.database
        );
    }
    match plan {
        Plan::Create {
            name,
            grants,
            quota,
        } => {
            let t = store::create_tenant(&mut client, &name, &grants, &quota).await?;
            print_token(&name, &t);
        }
        Plan::Token {
            name,
            description,
            expires_in,
        } => {
            let t = store::add_token(&mut client, &name, &description, expires_in).await?;
            print_token(&name, &t);
        }
        Plan::Revoke { name, key_id } => {
            let n = store::revoke(&client, &name, key_id.as_deref()).await?;
            match key_id {
                Some(k) => println!("tenant `{name}`: token {k} revoked ({n} changed)"),
                None => println!("tenant `{name}` disabled; {n} token(s) revoked"),
            }
        }
        Plan::List { json } => {
            let tenants = store::list(&client).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tenants)?);
            } else {
                println!(
                    "{:<24} {:<9} {:<7} {:<14} {:<14} grants",
                    "tenant", "state", "tokens", "rows/s", "max body"
                );
                let opt = |v: Option<i64>| v.map_or("default".to_owned(), |v| v.to_string());
                for t in tenants {
                    println!(
                        "{:<24} {:<9} {:<7} {:<14} {:<14} {}",
                        t.name,
                        if t.disabled { "disabled" } else { "active" },
                        t.active_tokens,
                        opt(t.rows_per_second),
                        opt(t.max_body_bytes),
                        t.grants.join(",")
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_plan_validates_grants_and_quotas() {
        let ok = plan(TenantCommand::Create {
            name: "acme".into(),
            allow: vec!["metrics.*".into(), "logs.events".into()],
            rows_per_second: Some(10),
            max_body_bytes: None,
        })
        .expect("valid");
        assert!(matches!(ok, Plan::Create { ref grants, .. } if grants.len() == 2));
        let bad = plan(TenantCommand::Create {
            name: "acme".into(),
            allow: vec!["../etc".into()],
            rows_per_second: None,
            max_body_bytes: None,
        })
        .expect_err("bad grant");
        assert!(bad.to_string().contains("../etc"), "{bad}");
        assert!(plan(TenantCommand::Create {
            name: "acme".into(),
            allow: vec!["m.*".into()],
            rows_per_second: Some(0),
            max_body_bytes: None,
        })
        .is_err());
    }
}
