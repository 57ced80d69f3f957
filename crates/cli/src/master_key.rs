//! `tmirror master-key`: generate a master key file; rotate the key of a stopped deployment.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use tmirror_server::ServeConfig;
use tmirror_store::MasterKey;

use crate::serve::MasterKeyArgs as KeySettings;

#[derive(Args)]
pub struct MasterKeyArgs {
    #[command(subcommand)]
    command: MasterKeyCommand,
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Write a new random master key to FILE (mode 0600; an existing file is never replaced).
    Generate {
        /// The file to create.
        file: PathBuf,
    },
    /// Re-encrypt every credential's secret key with the key in --new-key-file. Offline: stop
    /// every server on the database first. When the current key is DATA_DIR/master.key, that
    /// file is replaced by the new key; otherwise start the servers with the new key after.
    /// Interrupted, it is finished by running it again with the same new key file.
    Rotate {
        /// The data directory of the server (where master.key and the SQLite database are).
        #[arg(long, env = "TMIRROR_DATA_DIR", default_value = "./tmirror-data")]
        data_dir: PathBuf,
        /// Database URL; default: SQLite in the data directory.
        #[arg(long, env = "TMIRROR_DATABASE_URL")]
        database_url: Option<String>,
        /// The current key: as for `tmirror serve`.
        #[command(flatten)]
        keys: KeySettings,
        /// The file holding the new key (`tmirror master-key generate FILE` makes one).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

pub fn run(args: MasterKeyArgs) -> anyhow::Result<()> {
    match args.command {
        MasterKeyCommand::Generate { file } => {
            let key = MasterKey::generate();
            tmirror_server::secrets::write_new_key_file(&file, &key)?;
            println!("wrote master key {} to {}", key.id(), file.display());
            Ok(())
        }
        MasterKeyCommand::Rotate {
            data_dir,
            database_url,
            keys,
            new_key_file,
        } => {
            let mut config = ServeConfig {
                data_dir,
                database_url,
                ..ServeConfig::default()
            };
            keys.apply(&mut config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let done =
                runtime.block_on(tmirror_server::rotate_master_key(&config, &new_key_file))?;
            println!("{done}");
            Ok(())
        }
    }
}
