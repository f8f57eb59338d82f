package config

import (
	"fmt"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"
)

// YAML renders the effective configuration as a YAML file that Load reads
// back to the same Config (the supervisor hands it to the serving
// process): every setting in table order, values not at their default
// annotated with their source.
func (c *Config) YAML() ([]byte, error) { return c.yaml(false) }

// PrintYAML is YAML for people (--print-config): the same file with what
// looks like a secret masked (Masked): raw_env values and route options
// under secret names (IsSecretKey), and passwords inside every string
// (MaskString).
func (c *Config) PrintYAML() ([]byte, error) { return c.yaml(true) }

func (c *Config) yaml(mask bool) ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	v := reflect.ValueOf(c).Elem()
	for i := range settings {
		s := &settings[i]
		if s.Field == "" || s.NoFile {
			continue
		}
		fv := v.FieldByName(s.Field).Interface()
		if mask {
			fv = maskSetting(s, fv)
		}
		val, err := yamlValue(s, fv)
		if err != nil {
			return nil, fmt.Errorf("print %s: %w", s.Key, err)
		}
		var n yaml.Node
		if err := n.Encode(val); err != nil {
			return nil, fmt.Errorf("print %s: %w", s.Key, err)
		}
		k := &yaml.Node{Kind: yaml.ScalarNode, Value: s.Key}
		if src, ok := c.Source[s.Key]; ok {
			// On the key for lists and maps: yaml.v3 would print a line
			// comment on a block node after its last item.
			if n.Kind == yaml.ScalarNode {
				n.LineComment = "from " + src
			} else {
				k.LineComment = "from " + src
			}
		}
		root.Content = append(root.Content, k, &n)
	}
	head := "asyncd effective configuration (asyncd --print-config)"
	if mask {
		head += "\nValues that look like secrets print as " + Masked + "."
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root}, HeadComment: head}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("print config: %w", err)
	}
	return out, nil
}

// yamlValue converts a field value to what the YAML loader reads back.
func yamlValue(s *Setting, v any) (any, error) {
	switch s.Type {
	case TypeDuration:
		return formatDuration(v.(time.Duration)), nil
	case TypeSize:
		n := v.(int64)
		if f := formatSize(n); f != fmt.Sprint(n) {
			return f, nil
		}
		return n, nil
	case TypeFileMode:
		return formatMode(reflect.ValueOf(v).Convert(reflect.TypeOf(int64(0))).Int()), nil
	case TypeEnum:
		return reflect.ValueOf(v).String(), nil
	case TypeStringList:
		if l := v.([]string); l != nil {
			return l, nil
		}
		return []string{}, nil
	case TypeRoutes:
		routes := v.([]Route)
		out := make([]yaml.Node, len(routes))
		for i, r := range routes {
			m := &out[i]
			m.Kind = yaml.MappingNode
			add := func(k string, val any) error {
				var n yaml.Node
				if err := n.Encode(val); err != nil {
					return fmt.Errorf("routes[%d].%s: %w", i, k, err)
				}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &n)
				return nil
			}
			if err := add(r.PathKey(), r.Path); err != nil {
				return nil, err
			}
			if err := add("handler", r.Handler); err != nil {
				return nil, err
			}
			if len(r.Methods) > 0 {
				if err := add("methods", r.Methods); err != nil {
					return nil, err
				}
			}
			if r.Blocking {
				if err := add("blocking", true); err != nil {
					return nil, err
				}
			}
			if r.StreamBody {
				if err := add("request_buffering", false); err != nil {
					return nil, err
				}
			}
			if len(r.Options) > 0 {
				if err := add("options", r.Options); err != nil {
					return nil, err
				}
			}
		}
		return out, nil
	}
	return v, nil
}
