package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

func versionFlags() *cmdFlags {
	return newFlags("version", "", 0, "Prints ramboot's version (module version, else VCS revision), and the Go version and platform it was built for.")
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if _, err := versionFlags().parse(args, stdout, stderr); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprintln(stdout, versionString(bi))
	return nil
}

// versionString is "ramboot VERSION GOVERSION OS/ARCH". VERSION is the main module's version
// when the build knows it (go install m@v1.2.3; go build in a checkout stamps a pseudo-version
// since Go 1.24), else the VCS revision with "-dirty" for uncommitted changes, else "(devel)".
func versionString(bi *debug.BuildInfo) string {
	ver, goVer := "", runtime.Version()
	if bi != nil {
		goVer = bi.GoVersion
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			ver = v
		}
		if ver == "" {
			var rev string
			dirty := false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" && dirty {
				rev += "-dirty"
			}
			ver = rev
		}
	}
	if ver == "" {
		ver = "(devel)"
	}
	return fmt.Sprintf("ramboot %s %s %s/%s", ver, goVer, runtime.GOOS, runtime.GOARCH)
}
