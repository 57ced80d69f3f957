//! `tmirror filter ...`: traffic mirror filters (named sets of rules; see `tmirror rule`).

use clap::{Args, Subcommand};
use tmirror_client::{Filter, FilterCreate, FilterUpdate, Page};

use super::{nothing_to_update, ClientOpts, Context, Paging};
use crate::error::CliError;
use crate::output::{self, fields, list_json, Table};

/// Traffic mirror filters: the ingress and egress rules that choose what a session mirrors.
#[derive(Args)]
pub struct FilterArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub command: FilterCommand,
}

#[derive(Subcommand)]
pub enum FilterCommand {
    /// Create a filter (add rules with `tmirror rule create --filter ID`)
    Create {
        /// Name: 1-64 letters, digits, '_', '-' or '.'
        #[arg(long)]
        name: String,
        /// Description: at most 255 characters, no '<' or '>'
        #[arg(long)]
        description: Option<String>,
    },
    /// Show one filter with its rules
    Show {
        /// Filter id
        id: String,
    },
    /// List filters (filters are exact matches; repeat a flag for "any of")
    List {
        #[command(flatten)]
        paging: Paging,
        /// Filter id
        #[arg(long)]
        id: Vec<String>,
        /// Name
        #[arg(long)]
        name: Vec<String>,
        /// Description
        #[arg(long)]
        description: Vec<String>,
        /// Creation time, e.g. 2023-02-23T06:57:39Z
        #[arg(long)]
        created_at: Vec<String>,
        /// Update time, e.g. 2023-02-23T06:57:39Z
        #[arg(long)]
        updated_at: Vec<String>,
    },
    /// Change the name or description of a filter
    Update {
        /// Filter id
        id: String,
        /// Name
        #[arg(long)]
        name: Option<String>,
        /// Description
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete filters, with their rules (refused while a session uses one)
    Delete {
        /// Filter ids
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

pub fn run(ctx: &Context, command: FilterCommand) -> Result<(), CliError> {
    let c = &ctx.client;
    match command {
        FilterCommand::Create { name, description } => {
            let f = ctx.call(c.filter_create(&FilterCreate { name, description }))?;
            show(ctx, &f);
        }
        FilterCommand::Show { id } => show(ctx, &ctx.call(c.filter_show(&id))?),
        FilterCommand::List {
            paging,
            id,
            name,
            description,
            created_at,
            updated_at,
        } => {
            let opts = paging.options(&[
                ("id", &id),
                ("name", &name),
                ("description", &description),
                ("created_at", &created_at),
                ("updated_at", &updated_at),
            ]);
            let page = if paging.all {
                Page {
                    items: ctx.call(c.filter_list_all(&opts))?,
                    page_info: Some(Default::default()),
                    request_id: None,
                }
            } else {
                ctx.call(c.filter_list(&opts))?
            };
            if ctx.json() {
                output::print_json(&list_json("traffic_mirror_filters", &page, paging.all));
            } else {
                output::print(&table(&page.items));
                output::more_hint(page.page_info.as_ref());
            }
        }
        FilterCommand::Update {
            id,
            name,
            description,
        } => {
            let body = FilterUpdate { name, description };
            if body == FilterUpdate::default() {
                return Err(nothing_to_update("filter"));
            }
            show(ctx, &ctx.call(c.filter_update(&id, &body))?);
        }
        FilterCommand::Delete { ids } => {
            for id in ids {
                ctx.call(c.filter_delete(&id))?;
                if !ctx.json() {
                    output::print(&format!("deleted filter {id}\n"));
                }
            }
        }
    }
    Ok(())
}

fn show(ctx: &Context, f: &Filter) {
    if ctx.json() {
        output::print_json(f);
        return;
    }
    let mut text = fields(vec![
        ("id", f.id.clone()),
        ("name", f.name.clone()),
        ("description", output::or_dash(Some(&f.description))),
        ("type", f.source_type.clone()),
        ("project_id", f.project_id.clone()),
        ("created_at", f.created_at.clone()),
        ("updated_at", f.updated_at.clone()),
    ]);
    let rules: Vec<_> = f
        .ingress_rules
        .iter()
        .chain(&f.egress_rules)
        .cloned()
        .collect();
    if rules.is_empty() {
        text.push_str("\nno rules (add some with `tmirror rule create --filter ");
        text.push_str(&f.id);
        text.push_str(" ...`)\n");
    } else {
        text.push_str("\nrules:\n");
        text.push_str(&super::rule::table(&rules, false));
    }
    output::print(&text);
}

fn table(items: &[Filter]) -> String {
    let mut t = Table::new(vec!["ID", "NAME", "INGRESS", "EGRESS", "DESCRIPTION"]);
    for f in items {
        t.row(vec![
            f.id.clone(),
            f.name.clone(),
            f.ingress_rules.len().to_string(),
            f.egress_rules.len().to_string(),
            output::or_dash(Some(&f.description)),
        ]);
    }
    t.render()
}
