// Command apicount counts the exported identifiers of a module's public
// packages, so the size of the API can be tracked from one release to the
// next.
//
// It walks the module rooted at the given directory (default "."), skipping
// internal/ and testdata/ directories, nested modules and _test.go files, and
// counts per package: exported types, funcs, consts and vars declared at the
// top level, exported methods on exported types and exported methods of
// exported interface types (the "names" column), and exported fields of
// exported struct types (the "fields" column, kept apart because a config
// struct's fields are its options). Methods and fields of unexported types
// are not counted, even when reachable through an exported function, because
// godoc does not list them either.
//
//	go run ./internal/cmd/apicount [-v] [dir]
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "list every counted identifier")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	pkgs, err := count(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apicount:", err)
		os.Exit(1)
	}
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	fmt.Println("names fields  package")
	var total, totalFields int
	for _, d := range dirs {
		names := pkgs[d]
		sort.Strings(names)
		fields := 0
		for _, n := range names {
			if strings.HasPrefix(n, "field ") {
				fields++
			}
		}
		total += len(names) - fields
		totalFields += fields
		fmt.Printf("%5d %6d  %s\n", len(names)-fields, fields, d)
		if *verbose {
			for _, n := range names {
				fmt.Printf("              %s\n", n)
			}
		}
	}
	fmt.Printf("%5d %6d  total (%d with fields)\n", total, totalFields, total+totalFields)
}

// count returns the exported identifiers of each public package under root,
// keyed by the package's directory relative to root.
func count(root string) (map[string][]string, error) {
	pkgs := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root {
			if name == "internal" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
		}
		names, err := countDir(path)
		if err != nil {
			return err
		}
		if len(names) > 0 {
			rel, _ := filepath.Rel(root, path)
			pkgs[rel] = names
		}
		return nil
	})
	return pkgs, err
}

func countDir(dir string) ([]string, error) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name == "main" {
			return nil, nil
		}
		files = append(files, f)
	}
	var names []string
	for _, f := range files {
		for _, decl := range f.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if !decl.Name.IsExported() {
					continue
				}
				if decl.Recv == nil {
					names = append(names, "func "+decl.Name.Name)
					continue
				}
				if recv := recvName(decl.Recv.List[0].Type); ast.IsExported(recv) {
					names = append(names, "method "+recv+"."+decl.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						if !spec.Name.IsExported() {
							continue
						}
						names = append(names, "type "+spec.Name.Name)
						names = append(names, members(spec.Name.Name, spec.Type)...)
					case *ast.ValueSpec:
						for _, n := range spec.Names {
							if n.IsExported() {
								names = append(names, decl.Tok.String()+" "+n.Name)
							}
						}
					}
				}
			}
		}
	}
	return names, nil
}

// members lists the exported fields of a struct type or the exported methods
// of an interface type; embedded names count as fields.
func members(typ string, expr ast.Expr) []string {
	var names []string
	switch t := expr.(type) {
	case *ast.StructType:
		for _, f := range t.Fields.List {
			if len(f.Names) == 0 {
				if n := recvName(f.Type); ast.IsExported(n) {
					names = append(names, "field "+typ+"."+n)
				}
				continue
			}
			for _, n := range f.Names {
				if n.IsExported() {
					names = append(names, "field "+typ+"."+n.Name)
				}
			}
		}
	case *ast.InterfaceType:
		for _, m := range t.Methods.List {
			for _, n := range m.Names {
				if n.IsExported() {
					names = append(names, "method "+typ+"."+n.Name)
				}
			}
		}
	}
	return names
}

// recvName strips pointers, type parameters and package qualifiers from a
// receiver or embedded type expression.
func recvName(expr ast.Expr) string {
	for {
		switch t := expr.(type) {
		case *ast.StarExpr:
			expr = t.X
		case *ast.IndexExpr:
			expr = t.X
		case *ast.IndexListExpr:
			expr = t.X
		case *ast.SelectorExpr:
			return t.Sel.Name
		case *ast.Ident:
			return t.Name
		default:
			return ""
		}
	}
}
