package normalize

import (
	"strings"

	"github.com/watchfloor/watchfloor/schemas"
)

// OCSF status_id values.
const (
	statusSuccess uint8 = 1
	statusFailure uint8 = 2
)

// body maps message bodies that carry security meaning; the event stays a
// Base Event when none matches. See Syslog for the list.
func (d *syslogDecoder) body(ev *schemas.Event) {
	msg := ev.Message
	switch {
	case strings.HasPrefix(msg, "CEF:") || strings.HasPrefix(msg, "LEEF:"):
		if err := parseCEFBody(msg, ev, d.received); err != nil {
			ev.AddUnmapped("cef.parse_error", err.Error())
		}
		return
	case strings.HasPrefix(msg, "MSWinEventLog\t"):
		snareBody(msg, ev)
		return
	case strings.HasPrefix(msg, "pam_unix("):
		pamBody(msg, ev)
		return
	}
	switch ev.ProcessName {
	case "sshd":
		sshdBody(msg, ev)
	case "sudo":
		sudoBody(msg, ev)
	case "kernel":
		netfilterBody(msg, ev)
	}
}

func authEvent(ev *schemas.Event, activity uint32, status uint8, user, ip string) {
	setClass(ev, schemas.ClassAuthentication, activity)
	ev.StatusID = status
	ev.UserName = user
	ev.Src.IP = ip
	ev.Dst.Hostname = ev.DeviceHostname
	ev.AddObservable(schemas.ObservableUserName, "user.name", user)
	ev.AddObservable(schemas.ObservableIP, "src_endpoint.ip", ip)
}

// sshdBody: "Accepted|Failed <method> for [invalid user ]<user> from <ip>
// port <n> ...", "Invalid user <user> from <ip>".
func sshdBody(msg string, ev *schemas.Event) {
	var status uint8
	rest, ok := strings.CutPrefix(msg, "Accepted ")
	if ok {
		status = statusSuccess
	} else if rest, ok = strings.CutPrefix(msg, "Failed "); ok {
		status = statusFailure
	} else if rest, ok = strings.CutPrefix(msg, "Invalid user "); ok {
		user, ip, _ := strings.Cut(rest, " from ")
		ip, port, _ := strings.Cut(ip, " port ")
		authEvent(ev, 1, statusFailure, user, ip)
		setPort(ev, port)
		ev.AddUnmapped("sshd.invalid_user", "true")
		return
	} else {
		return
	}
	method, rest, ok := strings.Cut(rest, " for ")
	if !ok || strings.IndexByte(method, ' ') >= 0 {
		return
	}
	user, rest, ok := strings.Cut(rest, " from ")
	if !ok {
		return
	}
	invalid := false
	if u, ok := strings.CutPrefix(user, "invalid user "); ok {
		user, invalid = u, true
	}
	ip, rest, _ := strings.Cut(rest, " port ")
	authEvent(ev, 1, status, user, ip)
	port, _, _ := strings.Cut(rest, " ")
	setPort(ev, port)
	ev.AddUnmapped("auth.method", method)
	if invalid {
		ev.AddUnmapped("sshd.invalid_user", "true")
	}
}

func setPort(ev *schemas.Event, port string) {
	if n, err := parseUint(port, 65535); err == nil {
		ev.Src.Port = uint16(n)
	}
}

// pamBody: "pam_unix(<service>:auth): authentication failure; ...
// rhost=<ip> user=<u>", "pam_unix(<service>:session): session
// opened|closed for user <u>".
func pamBody(msg string, ev *schemas.Event) {
	svc, rest, ok := strings.Cut(msg[len("pam_unix("):], "): ")
	if !ok {
		return
	}
	service, kind, _ := strings.Cut(svc, ":")
	switch {
	case kind == "auth" && strings.HasPrefix(rest, "authentication failure;"):
		var user, rhost string
		for _, f := range strings.Fields(rest[len("authentication failure;"):]) {
			if v, ok := strings.CutPrefix(f, "user="); ok {
				user = v
			} else if v, ok := strings.CutPrefix(f, "rhost="); ok {
				rhost = v
			}
		}
		authEvent(ev, 1, statusFailure, user, rhost)
	case kind == "session" && strings.HasPrefix(rest, "session opened for user "):
		user, _, _ := strings.Cut(rest[len("session opened for user "):], " ")
		authEvent(ev, 1, statusSuccess, user, "")
	case kind == "session" && strings.HasPrefix(rest, "session closed for user "):
		user, _, _ := strings.Cut(rest[len("session closed for user "):], " ")
		authEvent(ev, 2, statusSuccess, user, "")
	default:
		return
	}
	ev.AddUnmapped("pam.service", service)
}

// sudoBody: "<user> : TTY=pts/0 ; PWD=/home/u ; USER=root ; COMMAND=/bin/ls"
// is a Process Activity Launch run by <user> as USER.
func sudoBody(msg string, ev *schemas.Event) {
	user, rest, ok := strings.Cut(msg, " : ")
	if !ok || !strings.Contains(msg, " ; COMMAND=") {
		return
	}
	user = strings.TrimSpace(user)
	for rest != "" {
		var f string
		f, rest, _ = strings.Cut(rest, " ; ")
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "TTY":
			ev.AddUnmapped("sudo.tty", v)
		case "PWD":
			ev.AddUnmapped("sudo.pwd", v)
		case "USER":
			ev.AddUnmapped("sudo.target_user", v)
		case "COMMAND":
			// The last field; the command itself may hold " ; ".
			v = msg[strings.Index(msg, " ; COMMAND=")+len(" ; COMMAND="):]
			rest = ""
			ev.AddUnmapped("sudo.command", v)
			ev.AddObservable(schemas.ObservableCmdLine, "process.cmd_line", v)
		default:
			ev.AddUnmapped("sudo."+strings.ToLower(k), v)
		}
	}
	setClass(ev, schemas.ClassProcess, 1)
	ev.UserName = user
	ev.AddObservable(schemas.ObservableUserName, "actor.user.name", user)
}
