//! Compiles examples/proto/ (the `grpc` example's service) into Rust with tonic-prost-build,
//! running the protoc binary that the protoc-bin-vendored crate ships: nothing to install.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(
        config,
        &["proto/worker_info.proto"],
        &["proto"],
    )?;
    Ok(())
}
