//! The checked-in CRDs in `crds/` are exactly what `releasepassport crds`
//! generates from `src/api/`: change the types, then regenerate with
//! `make crds`.

use releasepassport::cli::crds::{crd_file_name, crd_yaml};

#[test]
fn checked_in_crds_match_the_generated_ones() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut expected_files = Vec::new();
    for crd in releasepassport::api::all_crds() {
        let name = crd_file_name(&crd);
        let generated = crd_yaml(&crd).expect("CRD serialises");
        let path = dir.join(&name);
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run `make crds`", path.display()));
        assert!(
            on_disk == generated,
            "{} is out of date with src/api/: run `make crds` and commit the result",
            path.display()
        );
        expected_files.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .expect("crds/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    present.sort();
    expected_files.sort();
    assert_eq!(
        present, expected_files,
        "crds/ holds exactly one file per CRD"
    );
}

#[test]
fn every_crd_is_namespaced_in_the_releasepassport_category_with_a_status_subresource() {
    for crd in releasepassport::api::all_crds() {
        assert_eq!(crd.spec.group, "releasepassport.io");
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.categories.as_deref(),
            Some(&["releasepassport".to_string()][..])
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{} has a status subresource",
            crd.spec.names.kind
        );
    }
}

#[test]
fn short_names_do_not_clash_with_built_in_resources() {
    // Short names of the built-in API (kubectl api-resources on v1.37) plus
    // widely installed operators' ones that users will have side by side.
    let taken = [
        "cs", "cm", "ep", "ev", "limits", "ns", "no", "pvc", "pv", "po", "rc", "quota", "sa",
        "svc", "crd", "crds", "ds", "deploy", "rs", "sts", "hpa", "cj", "csr", "ing", "netpol",
        "pdb", "pc", "psp", "sc", "ro", "rollout", "app", "apps", "pol", "cpol", "polr",
    ];
    for crd in releasepassport::api::all_crds() {
        for short in crd.spec.names.short_names.clone().unwrap_or_default() {
            assert!(
                !taken.contains(&short.as_str()),
                "{short} clashes with an existing short name"
            );
        }
    }
}
