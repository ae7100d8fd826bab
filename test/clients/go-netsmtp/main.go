// Command go-netsmtp sends one message per recipient the way the original Let's Encrypt
// boulder mailer did: net/smtp with PLAIN auth, a MAIL FROM built from a net/mail.Address
// with a display name, and a reconnect with exponential backoff that resends the same
// message (same Message-ID) when the server closes, resets, breaks the pipe or answers 421.
// It exists so mail-test-srv is proven against the bytes a real Go client puts on the wire.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"syscall"
	"time"
)

const (
	backoffBase = 10 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
)

type options struct {
	addr        string
	host        string
	from        *mail.Address
	user        string
	password    string
	maxAttempts int
	timeout     time.Duration
}

// sender keeps at most one open SMTP connection and reuses it across messages, as boulder did.
type sender struct {
	opts       options
	conn       net.Conn
	client     *smtp.Client
	dials      int
	reconnects int
}

func main() {
	var opts options
	var fromText, recipientsPath string
	flag.StringVar(&opts.addr, "addr", "127.0.0.1:9380", "SMTP server `HOST:PORT`")
	flag.StringVar(&fromText, "from", "Expiry bot <test@example.com>", "sender, `'Name <addr>'`")
	flag.StringVar(&opts.user, "user", "", "AUTH PLAIN user (no AUTH when empty)")
	flag.StringVar(&opts.password, "password", "", "AUTH PLAIN password")
	flag.StringVar(&recipientsPath, "recipients", "", "`FILE` with one address per line (required)")
	flag.IntVar(&opts.maxAttempts, "max-attempts", 50, "attempts per message before it counts as failed")
	flag.DurationVar(&opts.timeout, "timeout", 10*time.Second, "deadline for dialing and greeting, and for each message on a connection")
	flag.Parse()

	from, err := mail.ParseAddress(fromText)
	if err != nil {
		fatal("bad -from %q: %v", fromText, err)
	}
	opts.from = from
	host, _, err := net.SplitHostPort(opts.addr)
	if err != nil {
		fatal("bad -addr %q: %v", opts.addr, err)
	}
	opts.host = host
	if recipientsPath == "" {
		fatal("-recipients is required")
	}
	if opts.maxAttempts < 1 {
		fatal("-max-attempts must be at least 1")
	}
	recipients, err := readRecipients(recipientsPath)
	if err != nil {
		fatal("%v", err)
	}

	s := &sender{opts: opts}
	sent, failed := 0, 0
	for _, to := range recipients {
		if err := s.send(to, compose(from, to)); err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "go-netsmtp: %s: %v\n", to, err)
		} else {
			sent++
		}
	}
	s.quit()
	fmt.Printf("sent=%d failed=%d reconnects=%d\n", sent, failed, s.reconnects)
	if failed > 0 {
		os.Exit(1)
	}
}

func fatal(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-netsmtp: "+format+"\n", args...)
	os.Exit(2)
}

func readRecipients(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if line := strings.TrimSpace(scanner.Text()); line != "" {
			out = append(out, line)
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no recipients", path)
	}
	return out, nil
}

// compose builds the whole message once, so every resend carries the same Message-ID and a
// test server can tell a resend from a second message.
func compose(from *mail.Address, to string) []byte {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		fatal("random Message-ID: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from.String())
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Subject: Test message for %s\r\n", to)
	fmt.Fprintf(&b, "Date: %s\r\n", time.Now().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@go-netsmtp.example>\r\n", hex.EncodeToString(id))
	b.WriteString("MIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=UTF-8\r\n")
	b.WriteString("\r\n")
	fmt.Fprintf(&b, "Hello,\r\n\r\nthis message was sent by go-netsmtp to %s.\r\n", to)
	return []byte(b.String())
}

// send delivers msg to one recipient, reconnecting and resending after a connection-level
// failure until it succeeds or maxAttempts is spent.
func (s *sender) send(to string, msg []byte) error {
	var err error
	for attempt := 1; attempt <= s.opts.maxAttempts; attempt++ {
		if attempt > 1 {
			time.Sleep(backoff(attempt - 1))
		}
		if s.client == nil {
			if err = s.connect(); err != nil {
				if !retryable(err) && !isDialError(err) {
					return fmt.Errorf("connecting: %w", err)
				}
				continue
			}
		}
		err = s.transaction(to, msg)
		if err == nil {
			return nil
		}
		if retryable(err) {
			// The connection is gone (or about to be, after a 421): drop it and resend on a fresh one.
			s.drop()
			continue
		}
		// A refusal of this message only (a 5xx to RCPT, say): leave the connection usable for
		// the next one, as boulder did, or drop it when even RSET fails.
		if s.client.Reset() != nil {
			s.drop()
		}
		return err
	}
	return fmt.Errorf("gave up after %d attempts: %w", s.opts.maxAttempts, err)
}

// backoff is the sleep before reconnect i (1-based): base·2^(i-1), capped.
func backoff(i int) time.Duration {
	d := backoffBase
	for ; i > 1 && d < backoffMax; i-- {
		d *= 2
	}
	if d > backoffMax {
		d = backoffMax
	}
	return d
}

func (s *sender) connect() error {
	if s.dials > 0 {
		s.reconnects++
	}
	s.dials++
	conn, err := net.DialTimeout("tcp", s.opts.addr, s.opts.timeout)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(s.opts.timeout))
	// The server name is the host we dialed: PlainAuth sends credentials in clear only to
	// localhost / 127.0.0.1 / ::1 (or over TLS), which is what a loopback test server is.
	client, err := smtp.NewClient(conn, s.opts.host)
	if err != nil {
		conn.Close()
		return err
	}
	if err := client.Hello("localhost"); err != nil {
		client.Close()
		return err
	}
	if s.opts.user != "" {
		auth := smtp.PlainAuth("", s.opts.user, s.opts.password, s.opts.host)
		if err := client.Auth(auth); err != nil {
			client.Close()
			return err
		}
	}
	s.conn, s.client = conn, client
	return nil
}

func (s *sender) transaction(to string, msg []byte) error {
	s.conn.SetDeadline(time.Now().Add(s.opts.timeout))
	// from.String() is `"Name" <addr>`, so net/smtp writes MAIL FROM:<"Name" <addr>>: the
	// quirk of the original mailer that a test server has to accept.
	if err := s.client.Mail(s.opts.from.String()); err != nil {
		return err
	}
	if err := s.client.Rcpt(to); err != nil {
		return err
	}
	w, err := s.client.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (s *sender) drop() {
	if s.client != nil {
		s.client.Close()
	}
	s.conn, s.client = nil, nil
}

func (s *sender) quit() {
	if s.client != nil {
		s.conn.SetDeadline(time.Now().Add(s.opts.timeout))
		if err := s.client.Quit(); err != nil {
			s.client.Close()
		}
	}
	s.conn, s.client = nil, nil
}

// retryable reports a failure of the connection rather than of the message: the server
// closed it (EOF, or EOF inside a reply), reset it, the pipe broke, or it answered 421.
func retryable(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var reply *textproto.Error
	return errors.As(err, &reply) && reply.Code == 421
}

// isDialError is a failure to open the TCP connection at all (refused, say), which a
// reconnect loop also waits out, within the attempt budget.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
