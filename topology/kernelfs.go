package topology

import (
	"os"

	"golang.org/x/sys/unix"
)

// kernelFileSystems are the file systems whose files the kernel makes up
// as they are read, by their statfs magic. Their sizes say nothing (0 in
// /proc, 4096 in /sys), and reading one can block for ever or take
// something from the machine: /proc/kmsg hands the kernel's log to its
// reader, taking it from the syslog daemon's. No scenario file is there.
var kernelFileSystems = map[int64]string{
	unix.PROC_SUPER_MAGIC:    "proc",
	unix.SYSFS_MAGIC:         "sysfs",
	unix.DEBUGFS_MAGIC:       "debugfs",
	unix.TRACEFS_MAGIC:       "tracefs",
	unix.SECURITYFS_MAGIC:    "securityfs",
	unix.CGROUP_SUPER_MAGIC:  "cgroup",
	unix.CGROUP2_SUPER_MAGIC: "cgroup2",
	unix.BPF_FS_MAGIC:        "bpf",
	unix.EFIVARFS_MAGIC:      "efivarfs",
	unix.PSTOREFS_MAGIC:      "pstore",
	unix.SELINUX_MAGIC:       "selinuxfs",
	unix.SMACK_MAGIC:         "smackfs",
	unix.BINFMTFS_MAGIC:      "binfmt_misc",
	unix.NSFS_MAGIC:          "nsfs",
	0x62656570:               "configfs", // CONFIGFS_MAGIC, which x/sys does not name
}

// onKernelFS is the name of the kernel's file system that holds path (or
// f, once open), or "".
func onKernelFS(path string, f *os.File) string {
	var st unix.Statfs_t
	var err error
	if f != nil {
		err = unix.Fstatfs(int(f.Fd()), &st)
	} else {
		err = unix.Statfs(path, &st)
	}
	if err != nil {
		return ""
	}
	return kernelFileSystems[int64(st.Type)]
}
