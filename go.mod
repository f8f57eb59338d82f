module github.com/asyncd/asyncd

go 1.26

require (
	github.com/evanphx/wildcat v0.0.0-20141114174135-e7012f664567
	github.com/go-viper/mapstructure/v2 v2.4.0
	github.com/gorilla/websocket v1.5.3
	github.com/knadh/koanf/providers/file v1.2.1
	github.com/knadh/koanf/providers/posflag v1.0.2
	github.com/knadh/koanf/v2 v2.4.1
	github.com/panjf2000/ants/v2 v2.12.1
	github.com/spf13/pflag v1.0.6
	go.yaml.in/yaml/v3 v3.0.4
	golang.org/x/sys v0.32.0
)

require (
	github.com/fsnotify/fsnotify v1.9.0 // indirect
	github.com/knadh/koanf/maps v0.1.2 // indirect
	github.com/kr/pretty v0.2.1 // indirect
	github.com/kr/text v0.2.0 // indirect
	github.com/mitchellh/copystructure v1.2.0 // indirect
	github.com/mitchellh/reflectwalk v1.0.2 // indirect
	github.com/vektra/errors v0.0.0-20140903201135-c64d83aba85a // indirect
	golang.org/x/sync v0.11.0 // indirect
	gopkg.in/check.v1 v1.0.0-20190902080502-41f04d3bba15 // indirect
)
