"""The Sieve agreement table: (name, script, message, envelope) cases
whose outcome through postling must equal what Pigeonhole's `sieve-test`
says. A message is given as extra header lines and a body; every case
gets a From, To, Subject, Date and Message-ID unless it gives its own.
The RFCs' examples come first, each named after its section."""

FROM = "coyote@desert.example.org"

# (name, script, headers, body, envelope from or None for the default)
CASES = [
    # RFC 5228 §2.10.6 (fileinto when the folder is named), §4.1, §9.
    ("5228-9-example", r'''
require ["fileinto", "reject"];
if header :is "Sender" "owner-ietf-mtg@ietf.org" {
    fileinto "ietf";
} elsif address :DOMAIN :is ["From", "To"] "example.com" {
    keep;
} elsif anyof (NOT address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
               header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {
    fileinto "spam";
} else {
    fileinto "personal";
}''', "Sender: owner-ietf-mtg@ietf.org\n", "x\n", None),
    ("5228-9-domain", None, "From: Someone <someone@EXAMPLE.com>\n", "x\n", "5228-9-example"),
    ("5228-9-spam", None, "To: other@elsewhere.test\n", "x\n", "5228-9-example"),
    ("5228-9-money", None, "To: me@example.com\nSubject: Make lots of money fast\n", "x\n", "5228-9-example"),
    ("5228-9-personal", None, "To: me@example.com\n", "x\n", "5228-9-example"),
    ("5228-4.2-redirect", 'redirect "bart@example.com";', "", "x\n", None),
    ("5228-4.3-keep-stop", 'keep; stop; discard;', "", "x\n", None),
    ("5228-4.4-discard", 'if header :contains ["from"] ["idiot@example.com"] { discard; }',
     "From: idiot@example.com\n", "x\n", None),
    ("5228-4.4-not-idiot", 'if header :contains ["from"] ["idiot@example.com"] { discard; }', "", "x\n", None),
    ("5228-5.1-address-all", 'require "fileinto"; if address :is :all "from" "tim@example.com" { fileinto "tim"; }',
     "From: Tim <tim@example.com>\n", "x\n", None),
    ("5228-5.1-address-localpart", 'require "fileinto"; if address :localpart :is "from" "TIM" { fileinto "tim"; }',
     "From: tim@example.com\n", "x\n", None),
    ("5228-5.3-exists", 'require "fileinto"; if exists ["From","Date"] { fileinto "both"; }', "", "x\n", None),
    ("5228-5.3-exists-not", 'require "fileinto"; if exists ["From","X-Nope"] { fileinto "both"; }', "", "x\n", None),
    ("5228-5.4-envelope", 'require ["envelope", "fileinto"]; if envelope :all :is "from" "tim@example.com" { fileinto "env"; }',
     "", "x\n", "tim@example.com"),
    ("5228-5.4-envelope-domain", 'require ["envelope", "fileinto"]; if envelope :domain :is "to" "EXAMPLE.test" { fileinto "to"; }',
     "", "x\n", None),
    ("5228-5.6-not", 'require "fileinto"; if not header :is "subject" "x" { fileinto "n"; }', "", "x\n", None),
    ("5228-5.7-header", 'require "fileinto"; if header :contains ["From","To"] "desert" { fileinto "d"; }',
     "", "x\n", None),
    ("5228-5.9-size-over", 'require "fileinto"; if size :over 1K { fileinto "big"; }', "", ("y" * 70 + "\n") * 30, None),
    ("5228-5.9-size-under", 'require "fileinto"; if size :under 1K { fileinto "small"; }', "", "x\n", None),
    ("5228-2.7.1-matches-qmark", 'require "fileinto"; if header :matches "subject" "?ello*" { fileinto "h"; }',
     "Subject: hello world\n", "x\n", None),
    ("5228-2.7.1-escaped-star", r'require "fileinto"; if header :matches "subject" "a\\*b" { fileinto "star"; }',
     "Subject: a*b\n", "x\n", None),
    ("5228-2.7.3-octet", 'require "fileinto"; if header :is :comparator "i;octet" "subject" "HELLO" { fileinto "o"; }',
     "Subject: hello\n", "x\n", None),
    ("5228-2.7.3-casemap", 'require "fileinto"; if header :is :comparator "i;ascii-casemap" "subject" "HELLO" { fileinto "c"; }',
     "Subject: hello\n", "x\n", None),
    ("5228-3.1-elsif", 'require "fileinto"; if false { fileinto "a"; } elsif true { fileinto "b"; } else { fileinto "c"; }',
     "", "x\n", None),
    ("5228-3.1-else", 'require "fileinto"; if false { fileinto "a"; } elsif false { fileinto "b"; } else { fileinto "c"; }',
     "", "x\n", None),
    ("5228-allof", 'require "fileinto"; if allof (header :contains "subject" "a", header :contains "subject" "b") { fileinto "ab"; }',
     "Subject: a and b\n", "x\n", None),
    ("5228-anyof-none", 'require "fileinto"; if anyof (false, header :is "x" "y") { fileinto "ab"; }', "", "x\n", None),
    ("5228-fileinto-twice", 'require "fileinto"; fileinto "a"; fileinto "a"; fileinto "INBOX";', "", "x\n", None),
    ("5228-keep-and-fileinto", 'require "fileinto"; keep; fileinto "b";', "", "x\n", None),
    ("5228-redirect-twice", 'redirect "a@x.test"; redirect "a@x.test";', "", "x\n", None),
    ("5228-encoded-words", 'require "fileinto"; if header :contains "subject" "Grüße" { fileinto "de"; }',
     "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Bonn\n", "x\n", None),
    ("5228-multi-line", 'require "fileinto";\nif header :is "subject" text:\nmulti\n.\n{ fileinto "m"; }',
     "Subject: multi\n", "x\n", None),
    # Invalid scripts: sievec refuses them, so must we.
    ("invalid-unknown-command", 'frobnicate;', "", "x\n", None),
    ("invalid-fileinto-not-required", 'fileinto "x";', "", "x\n", None),
    ("invalid-unknown-extension", 'require "frobnicate";', "", "x\n", None),
    ("invalid-require-late", 'keep; require "fileinto";', "", "x\n", None),
    ("invalid-else-alone", 'else { keep; }', "", "x\n", None),
    ("invalid-two-match-types", 'if header :is :contains "a" "b" { keep; }', "", "x\n", None),
    ("invalid-unknown-comparator", 'if header :comparator "i;nope" "a" "b" { keep; }', "", "x\n", None),
    ("invalid-count-without-relational", 'if header :count "eq" "a" "1" { keep; }', "", "x\n", None),
    ("invalid-copy-without-copy", 'redirect :copy "a@x.test";', "", "x\n", None),
    ("invalid-size-both", 'if size :over :under 1 { keep; }', "", "x\n", None),
    ("invalid-redirect-address", 'redirect "not an address";', "", "x\n", None),
    ("invalid-if-without-block", 'if true keep;', "", "x\n", None),
    ("invalid-missing-semicolon", 'keep', "", "x\n", None),
    ("invalid-flags-not-required", 'require "fileinto"; fileinto :flags "\\\\Seen" "x";', "", "x\n", None),
    ("invalid-date-part", 'require "date"; if date :is "date" "fortnight" "1" { keep; }', "", "x\n", None),
    ("invalid-ascii-numeric-contains",
     'require "comparator-i;ascii-numeric"; if header :contains :comparator "i;ascii-numeric" "a" "1" { keep; }',
     "", "x\n", None),
    # reject / ereject (RFC 5429).
    ("5429-reject", 'require "reject"; if header :contains "subject" "viagra" { reject "I do not want it"; }',
     "Subject: cheap viagra\n", "x\n", None),
    # vacation (RFC 5230, 6131).
    ("5230-4-example", r'''require "vacation";
if header :contains "subject" "cyrus" {
    vacation "I'm out -- send mail to cyrus-bugs";
} else {
    vacation "I'm out -- call me at +1 304 555 0123";
}''', "Subject: about cyrus\n", "x\n", None),
    ("5230-days", 'require "vacation"; vacation :days 23 :addresses ["tjs@example.edu", "ts4z@landru.example.edu"] "I am away";',
     "", "x\n", None),
    ("5230-subject-from", 'require "vacation"; vacation :subject "Gone fishin\'" :from "alice@example.test" "Gone";',
     "", "x\n", None),
    ("6131-seconds", 'require "vacation-seconds"; vacation :seconds 1800 "back soon";', "", "x\n", None),
    ("5230-not-to-lists", 'require "vacation"; vacation "away";', "List-Id: <list.example.org>\n", "x\n", None),
    ("5230-not-bulk", 'require "vacation"; vacation "away";', "Precedence: bulk\n", "x\n", None),
    ("5230-not-auto", 'require "vacation"; vacation "away";', "Auto-Submitted: auto-generated\n", "x\n", None),
    ("5230-not-mailer-daemon", 'require "vacation"; vacation "away";', "", "x\n", "MAILER-DAEMON@desert.example.org"),
    ("5230-not-addressed", 'require "vacation"; vacation "away";', "To: someone@else.test\n", "x\n", None),
    ("5230-addressed-by-addresses", 'require "vacation"; vacation :addresses "someone@else.test" "away";',
     "To: someone@else.test\n", "x\n", None),
    # imap4flags (RFC 5232).
    ("5232-setflag-keep", 'require "imap4flags"; setflag "\\\\Flagged"; keep;', "", "x\n", None),
    ("5232-addflag-implicit", 'require "imap4flags"; addflag ["\\\\Seen", "\\\\Flagged"]; removeflag "\\\\Seen";',
     "", "x\n", None),
    ("5232-fileinto-flags", 'require ["imap4flags", "fileinto"]; fileinto :flags "\\\\Answered $Label1" "f";',
     "", "x\n", None),
    ("5232-hasflag", 'require ["imap4flags", "fileinto"]; addflag "\\\\Draft"; if hasflag :contains "draft" { fileinto "dr"; }',
     "", "x\n", None),
    ("5232-example", r'''require ["imap4flags", "fileinto"];
if header :contains "from" "boss@frobnitzm.example.edu" {
    setflag "flagvar" "\\Flagged";
    fileinto :flags "${flagvar}" "INBOX.From Boss";
}''', "From: boss@frobnitzm.example.edu\n", "x\n", None),
    # variables (RFC 5229).
    ("5229-3.2-matches", r'''require ["variables", "fileinto"];
if header :matches "List-ID" "*<*@*" {
    fileinto "lists.${2}"; stop;
}''', "List-ID: Acme <acme-users@acme.example.org>\n", "x\n", None),
    ("5229-3.2-subject", r'''require ["variables", "fileinto"];
if header :matches "Subject" "[*] *" { fileinto "${1}"; }''',
     "Subject: [acme-users] [fwd] version 1.0 is out\n", "x\n", None),
    ("5229-3.2-address", r'''require ["variables", "fileinto"];
if address :matches ["To", "From"] "*@*.example.com" { fileinto "${1}-${2}"; }''',
     "To: coyote@ACME.Example.COM\n", "x\n", None),
    ("5229-4-set", r'''require ["variables", "fileinto"];
set "honorific" "Mr"; set "first_name" "Wile"; set "last_name" "Coyote";
set "vacation" "${HONORIFIC} ${First_Name} ${last_name}";
if string :is "${vacation}" "Mr Wile Coyote" { fileinto "set"; }''', "", "x\n", None),
    ("5229-4.1-modifiers", r'''require ["variables", "fileinto"];
set :upperfirst :lower "b" "juMBlEd lETteRS";
if string :is "${b}" "Jumbled letters" { fileinto "mod"; }''', "", "x\n", None),
    ("5229-4.1-length", r'''require ["variables", "fileinto"];
set :length "n" "abcdef";
if string :is "${n}" "6" { fileinto "six"; }''', "", "x\n", None),
    ("5229-4.1-quotewildcard", r'''require ["variables", "fileinto"];
set :quotewildcard "q" "a*b?";
if string :is "${q}" "a\\*b\\?" { fileinto "q"; }''', "", "x\n", None),
    ("5229-5-string", r'''require ["variables", "fileinto"];
set "state" "yes";
if string :is "${state}" "yes" { fileinto "y"; }''', "", "x\n", None),
    ("5229-unknown-empty", r'''require ["variables", "fileinto"];
if string :is "${nothing}" "" { fileinto "empty"; }''', "", "x\n", None),
    ("5229-no-recursion", r'''require ["variables", "fileinto"];
set "a" "${b}"; set "b" "x";
if string :is "${a}" "${b}" { fileinto "r"; } else { fileinto "flat"; }''', "", "x\n", None),
    # body (RFC 5173).
    ("5173-contains", 'require ["body", "fileinto"]; if body :contains "MAKE MONEY" { fileinto "spam"; }',
     "", "Please make money fast\n", None),
    ("5173-raw", 'require ["body", "fileinto"]; if body :raw :contains "=3D" { fileinto "qp"; }',
     "Content-Transfer-Encoding: quoted-printable\n", "a =3D b\n", None),
    ("5173-text-decoded", 'require ["body", "fileinto"]; if body :text :contains "a = b" { fileinto "dec"; }',
     "Content-Transfer-Encoding: quoted-printable\n", "a =3D b\n", None),
    ("5173-content", 'require ["body", "fileinto"]; if body :content "text" :contains "hidden" { fileinto "t"; }',
     'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
     "--b\nContent-Type: text/plain\n\nhidden words\n--b\nContent-Type: application/octet-stream\n\nzzz\n--b--\n", None),
    ("5173-not-in-attachment", 'require ["body", "fileinto"]; if body :text :contains "zzz" { fileinto "t"; }',
     'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
     "--b\nContent-Type: text/plain\n\nhidden words\n--b\nContent-Type: application/octet-stream\n\nzzz\n--b--\n", None),
    # relational (RFC 5231).
    ("5231-count", r'''require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["3"] { fileinto "many"; }''',
     "Cc: a@x.test, b@x.test\n", "x\n", None),
    ("5231-count-few", r'''require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["4"] { fileinto "many"; }''',
     "Cc: a@x.test, b@x.test\n", "x\n", None),
    ("5231-value", r'''require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "gt" :comparator "i;ascii-numeric" "x-priority" "3" { fileinto "low"; }''',
     "X-Priority: 5\n", "x\n", None),
    ("5231-value-string", r'''require ["relational", "fileinto"];
if header :value "lt" "subject" "m" { fileinto "early"; }''', "Subject: apple\n", "x\n", None),
    ("5231-spamheader", r'''require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "ge" :comparator "i;ascii-numeric" "X-Spam-Score" "10" { fileinto "Junk"; }''',
     "X-Spam-Score: 12\n", "x\n", None),
    # subaddress (RFC 5233).
    ("5233-detail", r'''require ["envelope", "subaddress", "fileinto"];
if envelope :detail "to" "mta-filters" { fileinto "mta-filters"; }''', "", "x\n", None),
    ("5233-user", r'''require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "alice" { fileinto "me"; }''', "", "x\n", None),
    ("5233-no-detail", r'''require ["subaddress", "fileinto"];
if address :detail "to" "" { fileinto "empty-detail"; }''', "To: alice@example.test\n", "x\n", None),
    ("5233-empty-detail", r'''require ["subaddress", "fileinto"];
if address :detail "to" "" { fileinto "empty-detail"; }''', "To: alice+@example.test\n", "x\n", None),
    # copy (RFC 3894).
    ("3894-redirect-copy", 'require "copy"; redirect :copy "b@x.test";', "", "x\n", None),
    ("3894-fileinto-copy", 'require ["copy", "fileinto"]; fileinto :copy "c";', "", "x\n", None),
    # date and index (RFC 5260).
    ("5260-date-year", 'require ["date", "fileinto"]; if date :is "date" "year" "2009" { fileinto "old"; }',
     "", "x\n", None),
    ("5260-originalzone", r'''require ["date", "fileinto", "variables"];
if date :originalzone :matches "date" "hour" "*" { fileinto "h${1}"; }''', "", "x\n", None),
    ("5260-zone", r'''require ["date", "fileinto", "variables"];
if date :zone "+0100" :matches "date" "time" "*" { fileinto "t${1}"; }''', "", "x\n", None),
    ("5260-weekday", 'require ["date", "fileinto"]; if date :is "date" "weekday" "3" { fileinto "wed"; }',
     "", "x\n", None),
    ("5260-iso8601", r'''require ["date", "fileinto", "variables"];
if date :originalzone :matches "date" "iso8601" "*" { set "d" "${1}"; }
if string :is "${d}" "2009-02-18T20:30:00-05:00" { fileinto "iso"; }''', "", "x\n", None),
    ("5260-currentdate", r'''require ["date", "relational", "fileinto"];
if currentdate :value "ge" "year" "2020" { fileinto "now"; }''', "", "x\n", None),
    ("5260-index", r'''require ["index", "fileinto"];
if header :index 2 :is "x-hop" "second" { fileinto "idx"; }''',
     "X-Hop: first\nX-Hop: second\n", "x\n", None),
    ("5260-index-last", r'''require ["index", "fileinto"];
if header :index 1 :last :is "x-hop" "last" { fileinto "last"; }''',
     "X-Hop: first\nX-Hop: last\n", "x\n", None),
    # mailbox (RFC 5490).
    ("5490-mailboxexists", r'''require ["mailbox", "fileinto"];
if mailboxexists "Trash" { fileinto "yes"; } else { fileinto "no"; }''', "", "x\n", None),
    ("5490-create", 'require ["mailbox", "fileinto"]; fileinto :create "Newly";', "", "x\n", None),
    # encoded-character (RFC 5228 §2.4.2.4).
    ("5228-encoded-character", r'''require ["encoded-character", "fileinto"];
if header :contains "subject" "$${hex:24 24}" { fileinto "dollars"; }''', "Subject: pay $$$\n", "x\n", None),
    ("5228-encoded-unicode", r'''require ["encoded-character", "fileinto"];
fileinto "${unicode:48 49}";''', "", "x\n", None),
    # spamtest (RFC 5235): an untrained filter gives no score (0).
    ("5235-untested", r'''require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "untested"; }''', "", "x\n", None),
    # duplicate (RFC 7352): the first copy is not a duplicate.
    ("7352-first", 'require ["duplicate", "fileinto"]; if duplicate { fileinto "dup"; }', "", "x\n", None),
    # More of the RFCs' own examples.
    ("5235-example", r"""require ["spamtest", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" {
    fileinto "INBOX.unclassified";
} elsif spamtest :value "ge" :comparator "i;ascii-numeric" "3" {
    fileinto "INBOX.spam-trap";
}""", "", "x\n", None),
    ("7352-example-discard", 'require "duplicate"; if duplicate { discard; }', "", "x\n", None),
    ("7352-example-alerts", r"""require ["duplicate", "variables", "imap4flags", "fileinto"];
if header :matches "subject" "ALERT: *" {
    if duplicate :seconds 60 :uniqueid "${1}" { setflag "\\seen"; }
    fileinto "Alerts";
}""", "Subject: ALERT: disk full\n", "x\n", None),
    ("5260-example-hours", r"""require ["date", "relational", "fileinto"];
if allof(header :is "from" "boss@example.com",
         date :value "ge" :originalzone "date" "hour" "09",
         date :value "lt" :originalzone "date" "hour" "17")
{ fileinto "urgent"; }""", "From: boss@example.com\nDate: Tue, 17 Feb 2009 10:30:00 -0500\n", "x\n", None),
    ("5173-example-raw", 'require "body"; if body :raw :contains "MAKE MONEY FAST" { discard; }',
     "", "Please MAKE MONEY FAST now\n", None),
    ("5173-example-schedule", r"""require ["body", "fileinto"];
if body :text :contains "project schedule" { fileinto "project.schedule"; }""",
     "", "About the project schedule, again.\n", None),
    ("5490-example", r"""require ["fileinto", "reject", "mailbox"];
if mailboxexists "Partners" {
    fileinto "Partners";
} else {
    reject "This message was not accepted by the Mailstore";
}""", "", "x\n", None),
    ("3894-example", r"""require ["copy"];
if header :contains "subject" "-sensitive-" { redirect :copy "backup@example.com"; }""",
     "Subject: the -sensitive- plans\n", "x\n", None),
    ("5232-example-size", r"""require ["imap4flags"];
if size :over 500K { setflag "\\Deleted"; }""", "", "x\n", None),
    ("5232-example-boss", r"""require ["imap4flags", "fileinto"];
if header :contains "from" "boss@frobnitzm.example.edu" {
    setflag "\\Flagged";
    fileinto "INBOX.From Boss";
}""", "From: boss@frobnitzm.example.edu\n", "x\n", None),
    ("5233-example", r"""require ["envelope", "subaddress", "fileinto"];
if envelope :user "to" "postmaster" { fileinto "inbox.postmaster"; stop; }
if envelope :detail :is "to" "mta-filters" { fileinto "inbox.mta-filters"; stop; }""", "", "x\n", None),
    ("5231-example-priority", r"""require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"] { fileinto "Priority"; }""",
     "X-Priority: 1\n", "x\n", None),
    ("5229-example-text", r"""require ["variables", "fileinto"];
set "text" "An unattended message";
if string :matches "${text}" "An * message" { fileinto "${1}"; }""", "", "x\n", None),
    ("5230-mime", r"""require "vacation";
vacation :mime text:
Content-Type: text/plain; charset=utf-8

I am away.
.
;""", "", "x\n", None),
    ("5229-3.2-example-exact", r"""require ["fileinto", "variables"];
if header :matches "List-ID" "*<*@*" {
    fileinto "INBOX.lists.${2}"; stop;
}""", "List-ID: Acme <acme-users@acme.example.org>\n", "x\n", None),
    ("5231-7-priority", None, "X-Priority: 2\n", "x\n", "5231-7-example"),
    ("5231-7-example", r"""require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if header :value "lt" :comparator "i;ascii-numeric" ["x-priority"] ["3"]
{
   fileinto "Priority";
}
elsif address :count "gt" :comparator "i;ascii-numeric" ["to"] ["5"]
{
   fileinto "SPAM";
}
elsif address :value "gt" :all :comparator "i;ascii-casemap" ["from"] ["M"]
{
   fileinto "From N-Z";
} else {
   fileinto "From A-M";
}
if allof ( address :count "eq" :comparator "i;ascii-numeric" ["to", "cc"] ["1"] ,
           address :all :comparator "i;ascii-casemap" ["to", "cc"] ["me@foo.example.com"] )
{
   fileinto "Only me";
}""", "To: a@x.test, b@x.test, c@x.test, d@x.test, e@x.test, f@x.test\n", "x\n", None),
    ("5231-7-only-me", None, "From: Zed <zed@x.test>\nTo: me@foo.example.com\n", "x\n", "5231-7-example"),
    ("5231-7-a-m", None, "From: abe@x.test\n", "x\n", "5231-7-example"),
    # RFC 5232 §9 as printed: "remove" and "anyof" without parentheses
    # make it a script sievec refuses, and so must we.
    ("5232-9-example-as-printed", r"""require ["fileinto", "imap4flags", "variables"];
if size :over 1M {
    addflag "MyFlags" "Big";
    fileinto :flags "${MyFlags}" "Big messages";
}
if header :is "Sender" "owner-ietf-mta-filters@example.org" {
    set "MyFlags" "\\Flagged $Work";
    keep :flags "${MyFlags}";
}
elsif anyof address :domain :is ["From", "To"] "company.example.com" {
    keep :flags "${MyFlags}";
}
else {
    remove "MyFlags" "\\Flagged";
    fileinto :flags "${MyFlags}" "personal";
}""", "", "x\n", None),
    ("5232-9-example-grandma", r"""require ["fileinto", "imap4flags", "variables"];
if header :is "From" "grandma@example.net" {
    addflag "MyFlags" ["\\Answered", "$MDNSent"];
    fileinto :flags "${MyFlags}" "GrandMa";
}
if header :is "Sender" "owner-ietf-mta-filters@example.org" {
    set "MyFlags" "\\Flagged $Work";
    keep :flags "${MyFlags}";
}""", "From: grandma@example.net\nSender: owner-ietf-mta-filters@example.org\n", "x\n", None),
    ("5235-spamtestplus-example", r"""require ["spamtestplus", "fileinto", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" {
    fileinto "INBOX.unclassified";
} elsif spamtest :percent :value "eq" :comparator "i;ascii-numeric" "0" {
    fileinto "INBOX.not-spam";
} elsif spamtest :percent :value "lt" :comparator "i;ascii-numeric" "37" {
    fileinto "INBOX.spam-trap";
}""", "", "x\n", None),
    ("7352-example-header", 'require "duplicate"; if duplicate :header "message-id" { discard; }', "", "x\n", None),
    ("7352-example-uniqueid", r"""require ["duplicate", "variables"];
if header :matches "message-id" "*" {
  if duplicate :uniqueid "${0}" { discard; }
}""", "", "x\n", None),
    ("7352-example-trash", r"""require ["duplicate", "fileinto", "mailbox"];
if duplicate { fileinto :create "Trash.Duplicate"; }""", "", "x\n", None),
    ("7352-example-handles", r"""require ["duplicate", "imap4flags"];
if duplicate :header "X-Event-ID" :handle "notifier" { discard; }
if allof (duplicate :header "X-Ticket-ID" :handle "support",
          address "to" "support@example.com",
          header :contains "subject" "fileserver") { setflag "\\seen"; }""",
     "X-Event-ID: e1\nX-Ticket-ID: t1\n", "x\n", None),
    ("5429-example-size", r"""require ["reject"];
if size :over 100K {
    reject text:
Your message is too big.  If you want to send me a big attachment,
put it on a public web site and send me a URL.
.
    ;
}""", "", "x\n", None),
    ("5429-example-coyote", r"""require ["reject"];
if header :contains "from" "coyote@desert.example.org" {
    reject text:
I am not taking mail from you, and I don't
want your birdseed, either!
.
    ;
}""", "", "x\n", None),
    ("6131-example-meeting", r"""require ["vacation-seconds"];
vacation :addresses ["tjs@example.edu", "ts4z@landru.example.edu"]
         :seconds 1800
         "I am in a meeting, and do not have access to email.";""", "", "x\n", None),
    ("6131-example-auto-resp", r"""require ["vacation-seconds"];
vacation :handle "auto-resp" :seconds 0
    "Your request has been received.  A service
     representative will contact you as soon as
     possible, usually within one business day.";""", "", "x\n", None),
    # stop, and implicit keep after nothing.
    ("stop-first", 'stop; discard;', "", "x\n", None),
    ("empty-script", '', "", "x\n", None),
    ("comment-only", '# nothing here\n/* nor here */', "", "x\n", None),
]
