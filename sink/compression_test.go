package sink

import "testing"

func TestCompressionAuto(t *testing.T) {
	tests := []struct {
		addr []string
		set  string
		want string
	}{
		{[]string{"127.0.0.1:9000"}, "auto", "none"},
		{[]string{"[::1]:9000", "localhost:9000"}, "auto", "none"},
		{[]string{"127.0.0.1:9000", "10.0.0.5:9000"}, "auto", "lz4"},
		{[]string{"clickhouse.internal:9000"}, "auto", "lz4"},
		{[]string{"127.0.0.1:9000"}, "zstd", "zstd"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Addr, c.Compression = tt.addr, tt.set
		if got := c.compression(); got != tt.want {
			t.Errorf("compression(%v, %s) = %s, want %s", tt.addr, tt.set, got, tt.want)
		}
	}
}
