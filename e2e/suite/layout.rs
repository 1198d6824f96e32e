//! What the operator's container really is, read from the kernel and the
//! image archive rather than from the Pod spec: the process's credentials and
//! mounts (through its cgroup and /proc, the node shares the host's PID
//! namespace), the image's config against the Dockerfile, and HTTP through
//! Service ClusterIPs (routed from the host into the node, where kube-proxy's
//! rules send them to a Pod).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{ClusterEnv, get_json, repo_root};

/// One container's main process, as the kernel sees it.
pub struct ContainerProcess {
    pub uid: u32,
    pub gid: u32,
    pub root_read_only: bool,
    pub root_options: String,
    /// The executable's path inside the container.
    pub exe: String,
    pub has_shell: bool,
}

/// Finds the main process of `container` in Pod `namespace/pod` through the
/// cgroup the kubelet created for it (cgroupfs driver, cgroup v1).
pub fn container_process(
    cluster: &ClusterEnv,
    namespace: &str,
    pod: &str,
    container: &str,
) -> ContainerProcess {
    let p = get_json(&["pod", "-n", namespace, pod]);
    let id = p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .and_then(|c| c["containerID"].as_str())
        .and_then(|id| id.strip_prefix("containerd://"))
        .unwrap_or_else(|| panic!("no containerd container {container} in {namespace}/{pod}"))
        .to_string();
    let root =
        PathBuf::from("/sys/fs/cgroup/pids").join(cluster.cgroup_root.trim_start_matches('/'));
    let dir =
        find_dir(&root, &id).unwrap_or_else(|| panic!("no cgroup {id} under {}", root.display()));
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).expect("cgroup.procs");
    let pid: u32 = procs
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .min()
        .expect("a process in the container's cgroup");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let id_field = |key: &str| -> u32 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|effective| effective.parse().ok())
            .unwrap_or(u32::MAX)
    };
    let mountinfo =
        std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("/proc/PID/mountinfo");
    let root_options = mountinfo
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 5 && f[4] == "/")
        .map(|f| f[5].to_string())
        .unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let container_root = PathBuf::from(format!("/proc/{pid}/root"));
    let has_shell = ["bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"]
        .iter()
        .any(|s| container_root.join(s).exists());
    ContainerProcess {
        uid: id_field("Uid:"),
        gid: id_field("Gid:"),
        root_read_only: root_options.split(',').any(|o| o == "ro"),
        root_options,
        exe,
        has_shell,
    }
}

fn find_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if entry.file_name() == name {
            return Some(path);
        }
        if let Some(found) = find_dir(&path, name) {
            return Some(found);
        }
    }
    None
}

/// The config of the image in an OCI archive (index -> manifest -> config).
fn image_config(archive: &Path) -> Value {
    let blobs = read_archive(archive);
    let blob = |digest: &str| -> Value {
        let path = format!("blobs/{}", digest.replace(':', "/"));
        let bytes = blobs
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("{path} is not in {}", archive.display()));
        serde_json::from_slice(&bytes.1).expect("JSON blob")
    };
    let index: Value = serde_json::from_slice(
        &blobs
            .iter()
            .find(|(p, _)| p == "index.json")
            .expect("index.json")
            .1,
    )
    .expect("index.json");
    let manifest = blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    );
    blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    )
}

fn read_archive(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).expect("image archive");
    let mut tar = tar::Archive::new(file);
    let mut out = Vec::new();
    for entry in tar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("path").display().to_string();
        let path = path.trim_start_matches("./").to_string();
        // Layers are not needed, only the small JSON documents.
        if path == "index.json" || entry.size() < 64 * 1024 {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("reading the archive");
            out.push((path, bytes));
        }
    }
    out
}

/// The final stage of the Dockerfile, read independently of e2e/image.sh.
struct FinalStage {
    user: String,
    entrypoint: Value,
    cmd: Value,
    expose: Vec<String>,
}

fn dockerfile_final_stage() -> FinalStage {
    let text = std::fs::read_to_string(repo_root().join("Dockerfile")).expect("Dockerfile");
    let lines: Vec<&str> = text.lines().collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.trim_start().to_uppercase().starts_with("FROM "))
        .expect("a FROM line");
    let mut stage = FinalStage {
        user: String::new(),
        entrypoint: Value::Null,
        cmd: Value::Null,
        expose: Vec::new(),
    };
    for line in lines.iter().skip(last_from + 1) {
        let (op, arg) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
        match op.to_uppercase().as_str() {
            "USER" => stage.user = arg.trim().to_string(),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(arg).expect("ENTRYPOINT JSON"),
            "CMD" => stage.cmd = serde_json::from_str(arg).expect("CMD JSON"),
            "EXPOSE" => stage
                .expose
                .extend(arg.split_whitespace().map(|p| format!("{p}/tcp"))),
            _ => {}
        }
    }
    stage
}

/// The image the cluster runs has the Dockerfile's runtime settings.
pub fn image_matches_dockerfile(archive: &Path) {
    let config = image_config(archive);
    let c = &config["config"];
    let stage = dockerfile_final_stage();
    assert_eq!(
        c["User"],
        stage.user.as_str(),
        "USER differs from the Dockerfile"
    );
    assert_eq!(
        c["Entrypoint"], stage.entrypoint,
        "ENTRYPOINT differs from the Dockerfile"
    );
    assert_eq!(c["Cmd"], stage.cmd, "CMD differs from the Dockerfile");
    let mut ports: Vec<String> = c["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ports.sort();
    let mut want = stage.expose.clone();
    want.sort();
    assert_eq!(ports, want, "EXPOSE differs from the Dockerfile");
}

/// ClusterIP and port of a Service's named port.
pub fn service_endpoint(namespace: &str, service: &str, port: &str) -> SocketAddr {
    let svc = get_json(&["service", "-n", namespace, service]);
    let ip = svc["spec"]["clusterIP"].as_str().expect("clusterIP");
    let port = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == port)
        .and_then(|p| p["port"].as_u64())
        .expect("service port");
    format!("{ip}:{port}").parse().expect("address")
}

/// A plain HTTP/1.0 GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut response = Vec::new();
    stream
        .take(4 * 1024 * 1024)
        .read_to_end(&mut response)
        .expect("response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
