package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeLoader records loads, fails the modules in fail, reports preloaded as loaded, and runs
// onLoad[name] after loading name, the way a bus driver makes devices appear.
type fakeLoader struct {
	loads     []string
	fail      map[string]bool
	preloaded map[string]bool
	onLoad    map[string]func() error
}

func (l *fakeLoader) Load(path, params string) error {
	if params != "" {
		return fmt.Errorf("unexpected params %q", params)
	}
	l.loads = append(l.loads, path)
	name := ModuleName(path)
	if l.fail[name] {
		return errors.New("exec format error")
	}
	if f := l.onLoad[name]; f != nil {
		return f()
	}
	return nil
}

func (l *fakeLoader) Loaded() (map[string]bool, error) { return l.preloaded, nil }

// addDevice writes sysRoot/bus/BUS/devices/DEV/modalias.
func addDevice(sysRoot, bus, dev, modalias string) error {
	dir := filepath.Join(sysRoot, "bus", bus, "devices", dev)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "modalias"), []byte(modalias+"\n"), 0o644)
}

const (
	virtioNetPCI = "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00"
	virtioBlkPCI = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"
	vmxnet3PCI   = "pci:v000015ADd000007B0sv000015ADsd000007B0bc02sc00i00"
	hostBridge   = "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"
)

func TestColdplug(t *testing.T) {
	ix := mustLoad(t, textTree)
	for _, tt := range []struct {
		name       string
		devices    map[string]string // "bus/dev" → modalias
		fail       []string
		preloaded  []string
		noVirtio   bool // virtio_pci creates no virtio devices
		wantLoaded []string
		wantLoads  []string // Load calls, when they differ from wantLoaded
		wantErrs   []string
	}{
		{
			name: "virtio-net needs a second pass",
			devices: map[string]string{
				"pci/0000:00:00.0": hostBridge,
				"pci/0000:00:03.0": virtioNetPCI,
			},
			wantLoaded: []string{"virtio_ring", "virtio", "virtio_pci", "failover", "net_failover", "virtio_net"},
		},
		{
			name: "virtio-net and virtio-blk, vmxnet3, a built-in and a device with no driver",
			devices: map[string]string{
				"pci/0000:00:03.0": virtioNetPCI,
				"pci/0000:00:04.0": virtioBlkPCI, // same driver: virtio_pci loads once
				"pci/0000:00:05.0": vmxnet3PCI,
				"pci/0000:00:06.0": hostBridge,
				"acpi/PNP0A03:00":  "acpi:PNP0A03:",
				"platform/serial":  "",
			},
			wantLoaded: []string{
				// In modalias order: vmxnet3 (15AD) sorts before virtio (1AF4).
				"vmxnet3", "virtio_ring", "virtio", "virtio_pci",
				// Second pass: the virtio devices, net (d00000001) before blk.
				"failover", "net_failover", "virtio_net", "virtio_blk",
			},
		},
		{
			name:       "already loaded modules are skipped",
			devices:    map[string]string{"pci/0000:00:03.0": virtioNetPCI},
			preloaded:  []string{"virtio", "virtio_ring", "failover"},
			wantLoaded: []string{"virtio_pci", "net_failover", "virtio_net"},
		},
		{
			name:       "a failed dependency skips its dependents, once",
			devices:    map[string]string{"pci/0000:00:03.0": virtioNetPCI, "pci/0000:00:05.0": vmxnet3PCI},
			fail:       []string{"virtio"},
			wantLoaded: []string{"vmxnet3", "virtio_ring"},
			wantLoads:  []string{"kernel/drivers/net/vmxnet3/vmxnet3.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko"},
			wantErrs:   []string{"loading module virtio: exec format error"},
		},
		{
			name:       "a failed driver does not stop the others",
			devices:    map[string]string{"pci/0000:00:03.0": virtioNetPCI, "pci/0000:00:05.0": vmxnet3PCI},
			fail:       []string{"virtio_net"},
			wantLoaded: []string{"vmxnet3", "virtio_ring", "virtio", "virtio_pci", "failover", "net_failover"},
			wantLoads: []string{
				"kernel/drivers/net/vmxnet3/vmxnet3.ko", "kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko",
				"kernel/drivers/virtio/virtio_pci.ko", "kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko",
				"kernel/drivers/net/virtio_net.ko",
			},
			wantErrs: []string{"loading module virtio_net: exec format error"},
		},
		{
			name:     "no devices",
			devices:  map[string]string{},
			noVirtio: true,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sys := t.TempDir()
			for dev, a := range tt.devices {
				bus, name, _ := strings.Cut(dev, "/")
				if err := addDevice(sys, bus, name, a); err != nil {
					t.Fatal(err)
				}
			}
			l := &fakeLoader{fail: map[string]bool{}, preloaded: map[string]bool{}}
			for _, n := range tt.fail {
				l.fail[n] = true
			}
			for _, n := range tt.preloaded {
				l.preloaded[n] = true
			}
			if !tt.noVirtio {
				// virtio_pci binds the virtio PCI functions and registers one virtio device
				// each, with the virtio device ID in its modalias.
				l.onLoad = map[string]func() error{"virtio_pci": func() error {
					n := 0
					for _, a := range tt.devices {
						id := map[string]string{virtioNetPCI: "00000001", virtioBlkPCI: "00000002"}[a]
						if id == "" {
							continue
						}
						dev := fmt.Sprintf("virtio%d", n)
						n++
						if err := addDevice(sys, "virtio", dev, "virtio:d"+id+"v00001AF4"); err != nil {
							return err
						}
					}
					return nil
				}}
			}
			var logs []string
			logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
			loaded, errs := Coldplug(ix, sys, l, logf)
			if diff := cmp.Diff(tt.wantLoaded, loaded); diff != "" {
				t.Errorf("loaded mismatch (-want +got):\n%s\nlog:\n%s", diff, strings.Join(logs, "\n"))
			}
			wantLoads := tt.wantLoads
			if wantLoads == nil {
				for _, n := range tt.wantLoaded {
					p, _ := ix.Deps(n)
					wantLoads = append(wantLoads, p[len(p)-1])
				}
			}
			if diff := cmp.Diff(wantLoads, l.loads); diff != "" {
				t.Errorf("Load calls mismatch (-want +got):\n%s", diff)
			}
			var gotErrs []string
			for _, err := range errs {
				gotErrs = append(gotErrs, err.Error())
			}
			if diff := cmp.Diff(tt.wantErrs, gotErrs); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestColdplugBounded checks that a driver that keeps creating devices cannot keep /init
// looping: Coldplug stops after MaxPasses.
func TestColdplugBounded(t *testing.T) {
	sys := t.TempDir()
	if err := addDevice(sys, "xen", "vif-0", "xen:vif"); err != nil {
		t.Fatal(err)
	}
	// Each generated device wants a fresh module, so every pass loads something new.
	var dep, ali strings.Builder
	for i := range MaxPasses + 5 {
		fmt.Fprintf(&dep, "m%d.ko:\n", i)
		fmt.Fprintf(&ali, "alias gen:%d m%d\n", i, i)
	}
	fmt.Fprintf(&ali, "alias xen:vif m0\n")
	ix := mustLoad(t, fstestFS(map[string]string{"modules.dep": dep.String(), "modules.alias": ali.String()}))
	i := 0
	l := &fakeLoader{}
	l.onLoad = map[string]func() error{}
	for j := range MaxPasses + 5 {
		l.onLoad[fmt.Sprintf("m%d", j)] = func() error {
			i++
			return addDevice(sys, "gen", fmt.Sprint(i), fmt.Sprintf("gen:%d", i))
		}
	}
	loaded, errs := Coldplug(ix, sys, l, nil)
	if len(loaded) != MaxPasses || errs != nil {
		t.Errorf("Coldplug loaded %d modules, errors %v; want %d, none", len(loaded), errs, MaxPasses)
	}
}

func TestModaliases(t *testing.T) {
	sys := t.TempDir()
	for _, d := range []struct{ bus, dev, alias string }{
		{"pci", "0000:00:03.0", virtioNetPCI},
		{"pci", "0000:00:04.0", virtioNetPCI}, // duplicate
		{"virtio", "virtio0", "virtio:d00000001v00001AF4"},
		{"cpu", "cpu0", ""},
	} {
		if err := addDevice(sys, d.bus, d.dev, d.alias); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(sys, "bus", "pci", "devices", "0000:00:1f.0"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Modaliases(sys)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{virtioNetPCI, "virtio:d00000001v00001AF4"}, got); diff != "" {
		t.Errorf("Modaliases mismatch (-want +got):\n%s", diff)
	}
	if got, err := Modaliases(filepath.Join(sys, "missing")); err != nil || got != nil {
		t.Errorf("Modaliases(missing) = %v, %v; want nothing, no error", got, err)
	}
}

func TestParseProcModules(t *testing.T) {
	got, err := ParseProcModules(strings.NewReader(`virtio_net 73728 0 - Live 0x0000000000000000
net_failover 24576 1 virtio_net, Live 0x0000000000000000
failover 16384 1 net_failover, Live 0x0000000000000000

`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"virtio_net": true, "net_failover": true, "failover": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseProcModules mismatch (-want +got):\n%s", diff)
	}
}
