//! Compiles `ponte/v1/*.proto` with the protoc shipped inside `protoc-bin-vendored`,
//! so a build needs no system protoc.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment yet.
        unsafe { env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let include = protoc_bin_vendored::include_path()?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    let protos: Vec<PathBuf> = std::fs::read_dir("ponte/v1")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "proto"))
        .collect();
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("ponte_descriptor.bin"))
        // An RPC nobody wrote must not compile into an UNIMPLEMENTED answer behind a SERVING
        // health status: every service implements each of its RPCs explicitly.
        .generate_default_stubs(false)
        // A request that does not decode is the caller's mistake, not INTERNAL.
        .codec_path("crate::codec::PonteCodec")
        .compile_protos(&protos, &[PathBuf::from("."), include])?;
    println!("cargo:rerun-if-changed=ponte");
    Ok(())
}
