package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"
	"golang.org/x/term"

	"github.com/ramboot/ramboot/internal/trust"
)

// The chain of trust's host side: keys, signatures and password hashes for /init. Keys and
// signatures are minisign's, so that the minisign tool reads them and signs for ramboot.

type keygenOptions struct {
	pub, sec, passwordFile string
	noPassword, force      bool
}

func keygenFlags(o *keygenOptions) *cmdFlags {
	fs := newFlags("keygen", "", 0,
		"Makes a minisign key pair: the public key is a trust anchor (ramboot initramfs --trust),",
		"the secret key signs menus and images (ramboot sign, or minisign -S).")
	fs.StringVar(&o.pub, "p", "ramboot.pub", "write the public key to `PUB`")
	fs.StringVar(&o.sec, "s", "ramboot.key", "write the secret key to `KEY`")
	fs.StringVar(&o.passwordFile, "password-file", "", "encrypt the secret key with the password on the first line of `FILE` (default: ask on the terminal)")
	fs.BoolVar(&o.noPassword, "no-password", false, "leave the secret key unencrypted (as minisign -W)")
	fs.BoolVar(&o.force, "force", false, "overwrite existing key files")
	return fs
}

func runKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o keygenOptions
	if _, err := keygenFlags(&o).parse(args, stdout, stderr); err != nil {
		return err
	}
	if !o.force {
		for _, f := range []string{o.pub, o.sec} {
			if _, err := os.Stat(f); err == nil {
				return fmt.Errorf("%s exists (--force overwrites it)", f)
			}
		}
	}
	pub, sec, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	var secText []byte
	if o.noPassword {
		secText, err = sec.MarshalText()
	} else {
		var pw string
		if pw, err = readPassword(ctx, o.passwordFile, "password for the secret key: ", true, stderr); err != nil {
			return err
		}
		secText, err = minisign.EncryptKey(pw, sec)
	}
	if err != nil {
		return err
	}
	pubText, _ := pub.MarshalText()
	if err := os.WriteFile(o.sec, append(secText, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(o.pub, append(pubText, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "key %X: public key %s, secret key %s\n", pub.ID(), o.pub, o.sec)
	return nil
}

type signOptions struct {
	sec, passwordFile, comment string
}

func signFlags(o *signOptions) *cmdFlags {
	fs := newFlags("sign", "FILE", 1,
		"Signs FILE into FILE.minisig (minisign's prehashed form; minisign -V verifies it). The",
		"trusted comment names the file, as /init requires; serve FILE.minisig beside FILE.")
	fs.StringVar(&o.sec, "s", "ramboot.key", "sign with the secret key `KEY` (ramboot keygen's or minisign -G's)")
	fs.StringVar(&o.passwordFile, "password-file", "", "the secret key's password is the first line of `FILE` (default: ask on the terminal when the key is encrypted)")
	fs.StringVar(&o.comment, "comment", "", "add `TEXT` to the trusted comment (shown in /init's log)")
	return fs
}

func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o signOptions
	pos, err := signFlags(&o).parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	file := pos[0]
	sec, err := loadSecretKey(ctx, o.sec, o.passwordFile, stderr)
	if err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	r := minisign.NewReader(f)
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	// minisign's own form: /init reads the file name from it.
	comment := "timestamp:" + strconv.FormatInt(time.Now().Unix(), 10) + "\tfile:" + filepath.Base(file) + "\thashed"
	if o.comment != "" {
		comment += "\t" + strings.ReplaceAll(o.comment, "\n", " ")
	}
	sig := r.SignWithComments(sec, comment, "signature from ramboot secret key "+fmt.Sprintf("%X", sec.ID()))
	out := file + trust.SigSuffix
	if err := os.WriteFile(out, append(sig, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: signed by key %X\n", out, sec.ID())
	return nil
}

type passwdOptions struct {
	passwordFile string
	cost         int
}

func passwdFlags(o *passwdOptions) *cmdFlags {
	fs := newFlags("passwd", "", 0,
		"Prints a bcrypt hash of a password, for ramboot initramfs --password-hash or a signed",
		"menu's password: key. It locks e (edit), the shell and entries marked locked: true.")
	fs.StringVar(&o.passwordFile, "password-file", "", "hash the first line of `FILE` (default: ask on the terminal, or read standard input)")
	fs.IntVar(&o.cost, "cost", 12, fmt.Sprintf("bcrypt cost (%d-%d; each step doubles the time a guess takes, and /init's check at each unlock)", trust.MinCost, trust.MaxCost))
	return fs
}

func runPasswd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o passwdOptions
	if _, err := passwdFlags(&o).parse(args, stdout, stderr); err != nil {
		return err
	}
	if o.cost < trust.MinCost || o.cost > trust.MaxCost {
		return fmt.Errorf("%w: --cost %d: want %d to %d (each step doubles the time /init takes to check the password)", errUsage, o.cost, trust.MinCost, trust.MaxCost)
	}
	pw, err := readPassword(ctx, o.passwordFile, "password: ", true, stderr)
	if err != nil {
		return err
	}
	// The context ends on SIGINT or SIGTERM (main): the hashing is abandoned, ramboot exits.
	h, err := trust.HashPasswordContext(ctx, pw, o.cost)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, h)
	return nil
}

// readPassword reads a password: the first line of file, else from the terminal without echo
// (twice when confirm), else the first line of standard input. When ctx ends (^C) while it
// waits at the terminal, the terminal's echo is restored and it returns ctx's error.
func readPassword(ctx context.Context, file, prompt string, confirm bool, stderr io.Writer) (string, error) {
	firstLine := func(r io.Reader) (string, error) {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", errors.New("no password given")
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		return firstLine(f)
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return firstLine(os.Stdin)
	}
	fmt.Fprint(stderr, prompt)
	pw, err := readTerminal(ctx, fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprint(stderr, "again: ")
		again, err := readTerminal(ctx, fd)
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(again) != string(pw) {
			return "", errors.New("the passwords differ")
		}
	}
	return string(pw), nil
}

// readTerminal is term.ReadPassword ending when ctx does: the terminal's state is restored
// (term.ReadPassword turned echo off) and the read, which cannot be interrupted, is abandoned
// to a goroutine, for a command that then exits.
func readTerminal(ctx context.Context, fd int) ([]byte, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("reading the password: %w", err)
	}
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		return r.pw, r.err
	case <-ctx.Done():
		term.Restore(fd, state)
		return nil, fmt.Errorf("reading the password: %w", ctx.Err())
	}
}
