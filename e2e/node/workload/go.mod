module releasepassport.io/e2e/node/workload

go 1.26.0
