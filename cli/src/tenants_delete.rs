//! `ponte tenants delete`: offboards a tenant through auth-token's `DeleteTenant`, after the
//! operator confirmed it by typing the tenant id (or passed `--yes`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use ponte_proto::v1::{DeleteTenantRequest, TenantDeletion, auth_token_service_client::AuthTokenServiceClient};

/// Whether the operator typed the tenant id back.
pub fn confirmed(tenant: &str, input: &mut impl BufRead, out: &mut impl Write) -> std::io::Result<bool> {
    write!(
        out,
        "This revokes tenant '{tenant}'s tokens and erases every record of it in every service. \
         It cannot be undone.\nType the tenant id to confirm: "
    )?;
    out.flush()?;
    let mut line = String::new();
    input.read_line(&mut line)?;
    Ok(line.trim() == tenant)
}

/// Runs the command: `yes` skips the prompt; without it, a terminal must be there to ask.
pub async fn delete(tenant: String, by: Option<String>, yes: bool, auth_token_url: String) -> anyhow::Result<()> {
    if !yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "refusing to delete tenant '{tenant}' without a confirmation: there is no terminal to ask on \
                 (pass --yes to confirm from a script)"
            );
        }
        if !confirmed(&tenant, &mut std::io::stdin().lock(), &mut std::io::stderr())? {
            anyhow::bail!("tenant '{tenant}' was not deleted: the confirmation did not match");
        }
    }
    let requested_by = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "ponte-cli".into());
    let channel = tonic::transport::Endpoint::from_shared(auth_token_url.clone())
        .with_context(|| format!("--auth-token-url '{auth_token_url}' is not a URL"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach auth-token at {auth_token_url}"))?;
    let deletion = AuthTokenServiceClient::new(crate::with_token(channel)?)
        .delete_tenant(DeleteTenantRequest { tenant_id: tenant.clone(), requested_by })
        .await
        .map_err(|e| anyhow::anyhow!("{:?}: {}", e.code(), e.message()))?
        .into_inner()
        .deletion
        .unwrap_or_default();
    print_deletion(&tenant, &deletion);
    Ok(())
}

fn print_deletion(tenant: &str, d: &TenantDeletion) {
    println!("deleted tenant {tenant} (audit record {}, by {})", &d.tenant_hash, d.requested_by);
    if !d.revoked.is_empty() {
        println!("  revoked at the provider: {}", d.revoked.join(", "));
    }
    for t in &d.tables {
        println!("  {:<40} {:>8} rows", t.table, t.rows);
    }
    println!("  {:<40} {:>8} keys", "redis", d.redis_keys);
}

#[cfg(test)]
mod tests {
    use super::confirmed;

    #[test]
    fn only_the_tenant_id_typed_back_confirms() {
        let mut out = Vec::new();
        assert!(confirmed("loja", &mut "loja\n".as_bytes(), &mut out).unwrap());
        assert!(String::from_utf8(out).unwrap().contains("cannot be undone"));
        for typed in ["y\n", "yes\n", "loja2\n", "\n", ""] {
            assert!(!confirmed("loja", &mut typed.as_bytes(), &mut Vec::new()).unwrap(), "{typed:?}");
        }
    }
}
