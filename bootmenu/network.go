package bootmenu

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// An entry's network: block is the network it boots over, in the kernel command line's
// parameters (dracut.cmdline(7)), one key per parameter, each a value or a list of them:
//
//	network:
//	  ifname: boot0:52:54:00:12:34:56                            # ifname=NAME:MAC
//	  bond: "bond0:eth0,eth1:mode=802.3ad,miimon=100:9000"       # bond=NAME:SLAVES:OPTIONS[:MTU]
//	  vlan: vlan0042:bond0                                       # vlan=NAME:PHYDEV
//	  ip: [vlan0042:dhcp, "[2001:db8::5]::[2001:db8::1]:64::vlan0042:none"]   # ip=, per interface and IP version
//	  route: "10.1.0.0/16:10.0.0.1:vlan0042"                     # rd.route=NET/PREFIX:GW[:IF]
//	  nameserver: [10.0.0.53, "2001:db8::53"]                    # nameserver=IP
//	  timeout: {carrier: 10, ifup: 20, dhcp: 30}                 # rd.net.timeout.*=SECONDS
//
// Quote a value that starts with [ (YAML reads [..] as a list) and a bond= with options inside
// a [...] list (its commas would split it). The values are checked as the command line's are,
// together (a vlan= on a bond slave, two ip= for one interface and IP version, ...); the first
// problem is the menu's error, with its line. /init does not act on the block yet.
var (
	networkKeys = []string{"ip", "vlan", "bond", "ifname", "route", "nameserver", "timeout"}
	timeoutKeys = []string{"carrier", "ifup", "dhcp", "iflink", "route", "ipv6dad", "ipv6auto"}
)

// network reads an entry's network: block.
func (d *yamlDecoder) network(n *yaml.Node, ctx string) (*cmdline.Network, error) {
	keys, err := d.mapping(n, ctx, "network", networkKeys)
	if err != nil {
		return nil, err
	}
	var (
		params []cmdline.Param
		nodes  []*yaml.Node
		fields []string
	)
	add := func(key, val string, node *yaml.Node, field string) {
		params = append(params, cmdline.Param{Key: key, Value: val, HasValue: true})
		nodes = append(nodes, node)
		fields = append(fields, field)
	}
	for _, k := range networkKeys {
		v, ok := keys[k]
		if !ok {
			continue
		}
		field := "network." + k
		if k == "timeout" {
			tk, err := d.mapping(v.val, ctx, field, timeoutKeys)
			if err != nil {
				return nil, err
			}
			for _, name := range timeoutKeys {
				if t, ok := tk[name]; ok {
					s, err := d.str(t.val, ctx, field+"."+name)
					if err != nil {
						return nil, err
					}
					add("rd.net.timeout."+name, s, t.val, field+"."+name)
				}
			}
			continue
		}
		key := k
		if k == "route" {
			key = "rd.route"
		}
		var items []*yaml.Node
		if v.val.Kind == yaml.SequenceNode {
			if items, err = d.seq(v.val, ctx, field); err != nil {
				return nil, err
			}
		} else {
			items = []*yaml.Node{v.val}
		}
		for i, it := range items {
			f := field
			if v.val.Kind == yaml.SequenceNode {
				f = fmt.Sprintf("%s[%d]", field, i)
			}
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return nil, d.errf(it, ctx, f, "want a string (quote a value that starts with [: YAML reads [..] as a list)")
			}
			add(key, it.Value, it, f)
		}
	}
	net, errs := cmdline.ParseNetwork(params)
	if len(errs) > 0 {
		var pe *cmdline.ParamError
		if errors.As(errs[0], &pe) {
			return nil, d.at(nodes[pe.Index], ctx, fields[pe.Index], fmt.Errorf("%q: %w", pe.Value, pe.Err))
		}
		return nil, d.at(n, ctx, "network", errs[0])
	}
	return &net, nil
}

// validateNetwork checks a network built in code as the parser checks one read from YAML.
func validateNetwork(n *cmdline.Network) error {
	params, err := cmdline.Split(strings.Join(n.Params(), " "))
	if err != nil {
		return err
	}
	if _, errs := cmdline.ParseNetwork(params); len(errs) > 0 {
		return errs[0]
	}
	return nil
}
