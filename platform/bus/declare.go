package bus

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Declaration says what one module uses of the bus. Publishing needs no declaration: a module always
// publishes on its own subjects ("<module>.events.>") into its own stream, and on nothing else. Consuming
// does: the module may use only the durable consumers it declares. The platform derives each module's NATS
// permissions from its declaration (see Declaration.Permissions), so the server refuses anything else.
type Declaration struct {
	// Module is the module's name, e.g. "notifications"; it is also its NATS user name.
	Module string
	// Consumes lists the durable consumers the module reads events through.
	Consumes []Consumption
}

// Consumption is one durable consumer a module declares.
type Consumption struct {
	// Stream is the stream consumed, e.g. StreamName("auth").
	Stream string
	// Durable is the durable consumer's name, e.g. "notifications-auth"; it belongs to this module alone.
	Durable string
	// Subjects filter the stream, e.g. "auth.events.user_registered"; each lies in the stream's subjects.
	Subjects []string
}

// SystemUser is the NATS user the platform itself connects as, to create and update streams and to answer
// /readyz; no module may be named after it.
const SystemUser = "seam"

// InboxPrefix is the prefix of module's reply subjects: its connection receives replies (JetStream
// acknowledgements, API responses, pulled messages) only on "<prefix>.>".
func InboxPrefix(module string) string { return "_INBOX_" + module }

// RPCSubjects is the subject filter of module's api endpoints (seam.rpc.<module>.<Method>), which the
// module's own connection serves when the module runs in the process.
func RPCSubjects(module string) string { return "seam.rpc." + module + ".>" }

// HTTPSubject is the subject a gateway forwards module's HTTP requests (those under /api/<module>) to; the
// processes running the module serve it in a queue group, so each request reaches one of them.
func HTTPSubject(module string) string { return "seam.http." + module }

// ServiceDiscoverySubjects is the filter of the NATS micro discovery subjects ($SRV.PING, .INFO, .STATS),
// which a module serving its api answers.
const ServiceDiscoverySubjects = "$SRV.>"

// Permissions is what one NATS user may publish to and subscribe to; nothing else is allowed.
type Permissions struct {
	// Publish lists the subjects (with wildcards) the user may publish to.
	Publish []string
	// Subscribe lists the subjects (with wildcards) the user may subscribe to.
	Subscribe []string
	// AllowResponses lets the user reply to the requests it receives (api calls, forwarded HTTP requests),
	// whatever their reply subject.
	AllowResponses bool
}

// Permissions returns the module's NATS permissions: publish on its own event subjects and to the exact
// JetStream API subjects its declared consumers need (info about its own stream; create, info and pull of
// each declared consumer; acknowledgements of that consumer's messages); subscribe to its own inbox prefix,
// its api endpoints (RPCSubjects), its HTTP subject (HTTPSubject) and the micro discovery subjects; and reply
// to the requests it receives. Calling another module's api or gateway goes through the platform's
// (SystemUser) connection, not the module's. A consumer with one filter subject may be created with that filter only (the client puts it in
// the API subject); one with several filters carries them in the request body, which the server's
// permissions cannot inspect, so there the filters are the declaration's promise, not the server's check.
func (d Declaration) Permissions() Permissions {
	pub := []string{d.Module + ".events.>", "$JS.API.STREAM.INFO." + StreamName(d.Module)}
	for _, c := range d.Consumes {
		create := "$JS.API.CONSUMER.CREATE." + c.Stream + "." + c.Durable
		if len(c.Subjects) == 1 {
			create += "." + c.Subjects[0]
		}
		pub = append(pub,
			create,
			"$JS.API.CONSUMER.INFO."+c.Stream+"."+c.Durable,
			"$JS.API.CONSUMER.MSG.NEXT."+c.Stream+"."+c.Durable,
			"$JS.ACK."+c.Stream+"."+c.Durable+".>",
		)
	}
	return Permissions{
		Publish: pub,
		Subscribe: []string{InboxPrefix(d.Module) + ".>", RPCSubjects(d.Module), HTTPSubject(d.Module),
			ServiceDiscoverySubjects},
		AllowResponses: true,
	}
}

// Validate checks one declaration: the module's name, and for each consumer its stream (one of a module's
// streams), its durable name (unique within the declaration) and its subjects (within that stream).
func (d Declaration) Validate() error {
	if !moduleName.MatchString(d.Module) {
		return fmt.Errorf("bus: module name %q must be lower-case letters, digits and underscores", d.Module)
	}
	if d.Module == SystemUser {
		return fmt.Errorf("bus: module name %q is reserved for the platform's own NATS user", d.Module)
	}
	seen := map[string]bool{}
	for _, c := range d.Consumes {
		if err := c.validate(); err != nil {
			return fmt.Errorf("bus: module %s: %w", d.Module, err)
		}
		key := c.Stream + "/" + c.Durable
		if seen[key] {
			return fmt.Errorf("bus: module %s: consumer %s on stream %s is declared twice", d.Module, c.Durable, c.Stream)
		}
		seen[key] = true
	}
	return nil
}

func (c Consumption) validate() error {
	owner := strings.ToLower(c.Stream)
	if !moduleName.MatchString(owner) || StreamName(owner) != c.Stream {
		return fmt.Errorf("consumer %s: stream %q is not a module's stream (want e.g. %q)", c.Durable, c.Stream, StreamName("billing"))
	}
	if c.Durable == "" || strings.ContainsAny(c.Durable, " \t\r\n.*>/\\") {
		return fmt.Errorf("consumer name %q must be non-empty without whitespace, '.', '*', '>' or slashes", c.Durable)
	}
	if len(c.Subjects) == 0 {
		return fmt.Errorf("consumer %s: no subjects", c.Durable)
	}
	own := EventSubject(owner, "")
	for _, s := range c.Subjects {
		if !strings.HasPrefix(s, own) || !validFilter(s) {
			return fmt.Errorf("consumer %s: subject %q is not on stream %s (%s>)", c.Durable, s, c.Stream, own)
		}
	}
	return nil
}

// validFilter reports whether s is a well-formed subject filter: non-empty tokens without whitespace, '>'
// only as the last token.
func validFilter(s string) bool {
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") || (tok == ">" && i != len(tokens)-1) ||
			(len(tok) > 1 && strings.ContainsAny(tok, "*>")) {
			return false
		}
	}
	return true
}

// ValidateDeclarations checks every declaration and that no durable consumer is declared by two modules
// (each module's consumers are its own).
func ValidateDeclarations(decls []Declaration) error {
	owner := map[string]string{}
	modules := map[string]bool{}
	var errs []error
	for _, d := range decls {
		if err := d.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if modules[d.Module] {
			errs = append(errs, fmt.Errorf("bus: module %s is declared twice", d.Module))
		}
		modules[d.Module] = true
		for _, c := range d.Consumes {
			key := c.Stream + "/" + c.Durable
			if other, ok := owner[key]; ok && other != d.Module {
				errs = append(errs, fmt.Errorf("bus: consumer %s on stream %s is declared by both %s and %s",
					c.Durable, c.Stream, other, d.Module))
			}
			owner[key] = d.Module
		}
	}
	return errors.Join(errs...)
}

// merge adds more's consumers to d, skipping exact repeats, and returns the result.
func (d Declaration) merge(more Declaration) Declaration {
	out := Declaration{Module: d.Module, Consumes: slices.Clone(d.Consumes)}
	for _, c := range more.Consumes {
		if !slices.ContainsFunc(out.Consumes, func(have Consumption) bool { return have.equal(c) }) {
			out.Consumes = append(out.Consumes, Consumption{Stream: c.Stream, Durable: c.Durable, Subjects: slices.Clone(c.Subjects)})
		}
	}
	return out
}

func (c Consumption) equal(o Consumption) bool {
	return c.Stream == o.Stream && c.Durable == o.Durable && slices.Equal(c.Subjects, o.Subjects)
}

// sortedDeclarations returns the declarations in m ordered by module, each with its consumers ordered by
// stream and durable name.
func sortedDeclarations(m map[string]Declaration) []Declaration {
	out := make([]Declaration, 0, len(m))
	for _, d := range m {
		d = d.merge(Declaration{})
		sort.Slice(d.Consumes, func(i, j int) bool {
			if d.Consumes[i].Stream != d.Consumes[j].Stream {
				return d.Consumes[i].Stream < d.Consumes[j].Stream
			}
			return d.Consumes[i].Durable < d.Consumes[j].Durable
		})
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}
