package normalize

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/watchfloor/watchfloor/schemas"
)

func TestWinEventGolden(t *testing.T) {
	goldenDir(t, WinEventJSON(), "testdata/winevent/*.json", "winevent_", map[string]int{"handwritten.json": 4})
}

// The three shipper shapes of one Sysmon process creation look alike.
func TestWinEventShapes(t *testing.T) {
	shapes := map[string]string{
		"nxlog":      `{"TimeCreated":"2021-04-28T20:11:55.364Z","Hostname":"D1","EventID":1,"SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","Image":"C:\\w.exe","ProcessId":"648","CommandLine":"w.exe x","User":"D1\\bob"}`,
		"winlogbeat": `{"@timestamp":"2021-04-28T20:11:55.364Z","winlog":{"event_id":1,"provider_name":"Microsoft-Windows-Sysmon","channel":"Microsoft-Windows-Sysmon/Operational","computer_name":"D1","event_data":{"Image":"C:\\w.exe","ProcessId":"648","CommandLine":"w.exe x","User":"D1\\bob"}}}`,
		"wazuh":      `{"win":{"system":{"systemTime":"2021-04-28T20:11:55.3643213Z","computer":"D1","eventID":"1","providerName":"Microsoft-Windows-Sysmon","channel":"Microsoft-Windows-Sysmon/Operational"},"eventdata":{"image":"C:\\w.exe","processId":"648","commandLine":"w.exe x","user":"D1\\bob"}}}`,
	}
	type short struct {
		Class, Activity uint32
		Time, Host      string
		Process, User   string
		PID             uint32
		CmdLine, Chan   string
	}
	want := short{1007, 1, "2021-04-28T20:11:55.364Z", "D1", `C:\w.exe`, `D1\bob`, 648, "w.exe x", "Microsoft-Windows-Sysmon/Operational"}
	for name, give := range shapes {
		t.Run(name, func(t *testing.T) {
			var ev schemas.Event
			if err := WinEventJSON().NewDecoder(BatchInfo{}).Record([]byte(give), &ev); err != nil {
				t.Fatal(err)
			}
			cmd, _ := ev.UnmappedValue("CommandLine")
			ch, _ := ev.UnmappedValue("Channel")
			got := short{ev.ClassUID, ev.ActivityID, ev.Time.Format("2006-01-02T15:04:05.999Z07:00"), ev.DeviceHostname, ev.ProcessName, ev.UserName, ev.ProcessPID, cmd, ch}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
			if id, _ := ev.UnmappedValue("EventID"); id != "1" {
				t.Errorf("EventID = %q, want 1", id)
			}
		})
	}
}

func FuzzWinEventJSON(f *testing.F) {
	fuzzSeeds(f, WinEventJSON(), "testdata/winevent/*.json", 30)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzFormat(t, WinEventJSON(), data) })
}

func BenchmarkWinEventJSON(b *testing.B) {
	dirs, recs := benchLines(b, "testdata/winevent/otrf_nxlog.json", nil)
	benchDecode(b, WinEventJSON(), dirs, recs)
}
