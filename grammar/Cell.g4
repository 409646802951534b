// The .cell language: one `cell NAME { ... }` per file. See docs/language.md.
// Statements end at a newline or ';'. A newline inside (...) or [...] continues the statement:
// the lexer counts bracket depth and drops newlines while it is positive (as Python does).
grammar Cell;

@lexer::members {
  int bracketDepth = 0;

  // A newline inside brackets continues the statement, unless the next line plainly starts a new
  // one (a declaration keyword, '}', or a primed equation `h' = ...`): then a bracket was left
  // unclosed, and ending the statement here keeps the error on its own line.
  //
  // Every newline of a run of blank lines would rescan the rest of the run (quadratic in the run's
  // length); the answer only depends on the first non-blank character after it, so it is kept for
  // the run: [scanFrom, scanTo] is the last run scanned, scanResult its answer.
  size_t scanFrom = 1, scanTo = 0, scanResult = 0;

  bool nextLineStartsStatement() {
    const size_t here = _input->index();
    if (here >= scanFrom && here <= scanTo) return scanResult != 0;
    size_t k = 1;
    auto la = [&](size_t i) { return _input->LA(static_cast<ssize_t>(i)); };
    auto blank = [&](size_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; };
    while (blank(la(k)) || la(k) == '\n') ++k;
    scanFrom = here;
    scanTo = here + k - 1;  // the index of the first non-blank character
    scanResult = startsStatementAt(k);
    return scanResult != 0;
  }

  bool startsStatementAt(size_t k) {
    auto la = [&](size_t i) { return _input->LA(static_cast<ssize_t>(i)); };
    auto blank = [&](size_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f'; };
    if (la(k) == '}') return true;
    std::string word;
    while (std::isalnum(static_cast<int>(la(k))) || la(k) == '_') word += static_cast<char>(la(k++));
    if (word == "cell" || word == "dim" || word == "input" || word == "noise" || word == "state" ||
        word == "param" || word == "const" || word == "output" || word == "integrator")
      return true;
    if (word.empty()) return false;
    while (blank(la(k))) ++k;
    if (word == "d" && la(k) == '(') return true;  // d(x)/dt = ...
    if (la(k) != '\'') return false;
    ++k;
    while (blank(la(k))) ++k;
    return la(k) == '=';
  }
}

// The whole file. cellc parses a file statement by statement (stmtLine), splitting the token
// stream at top-level newlines and ';', so one error never cascades into the next statement;
// `file` states the full language and is what the statement parser's pieces add up to.
file      : sep* cellDecl sep* EOF ;
stmtLine  : stmt EOF ;
cellDecl  : CELL name=IDENT sep* LBRACE sep* (stmt (sep+ stmt)*)? sep* RBRACE ;
sep       : NEWLINE | SEMI ;

stmt
  : DIM name=IDENT ASSIGN value=expr                                    # dimDecl
  | INPUT name=IDENT shape?                                             # inputDecl
  | NOISE name=IDENT shape? (TILDE initSpec)?                           # noiseDecl
  | STATE name=IDENT shape? (ASSIGN init=expr)?                         # stateDecl
  | PARAM name=IDENT shape? (TILDE initSpec)?                           # paramDecl
  | CONST name=IDENT shape? ASSIGN value=expr                           # constDecl
  | OUTPUT name=IDENT shape? ASSIGN value=expr                          # outputDecl
  | name=IDENT PRIME? ASSIGN value=expr                                 # equation
  | d=IDENT LPAREN name=IDENT RPAREN SLASH dt=IDENT ASSIGN value=expr   # derivative
  | INTEGRATOR method=IDENT                                             # integratorDecl
  ;

shape     : LBRACK (expr (COMMA expr)*)? RBRACK ;
initSpec  : call (PIPE call)* ;
call      : fn=IDENT LPAREN args? RPAREN ;
args      : arg (COMMA arg)* COMMA? ;
arg       : (key=IDENT ASSIGN)? expr ;

// Precedence, tightest first (ANTLR takes alternative order): indexing, ^ (right-assoc), unary -,
// then * / @, then + -, then the comparisons > < >= <=. So -x^2 is -(x^2), 2^-1 is 2^(-1) and
// v - 1 > 0 is (v - 1) > 0, as in Python; comparisons do not chain (the parser refuses a < b < c).
expr
  : operand=expr LBRACK index (COMMA index)* RBRACK                     # indexExpr
  | <assoc=right> base=expr CARET exponent=expr                         # powExpr
  | op=MINUS operand=expr                                               # negExpr
  | lhs=expr op=(STAR | SLASH | AT) rhs=expr                            # mulExpr
  | lhs=expr op=(PLUS | MINUS) rhs=expr                                 # addExpr
  | lhs=expr op=(GT | LT | GE | LE) rhs=expr                            # cmpExpr
  | call                                                                # callExpr
  | IDENT PRIME?                                                        # nameExpr
  | NUMBER                                                              # numberExpr
  | LPAREN expr RPAREN                                                  # parenExpr
  ;

index     : lo=expr? COLON hi=expr?                                     # sliceIndex
          | at=expr                                                     # pointIndex
          ;

CELL   : 'cell' ;
DIM    : 'dim' ;
INPUT  : 'input' ;
NOISE  : 'noise' ;
STATE  : 'state' ;
PARAM  : 'param' ;
CONST  : 'const' ;
OUTPUT : 'output' ;
INTEGRATOR : 'integrator' ;

LPAREN : '(' { ++bracketDepth; } ;
RPAREN : ')' { if (bracketDepth > 0) --bracketDepth; } ;
LBRACK : '[' { ++bracketDepth; } ;
RBRACK : ']' { if (bracketDepth > 0) --bracketDepth; } ;
LBRACE : '{' ;
RBRACE : '}' ;
COMMA  : ',' ;
COLON  : ':' ;
SEMI   : ';' ;
ASSIGN : '=' ;
TILDE  : '~' ;
PIPE   : '|' ;
PRIME  : '\'' ;
PLUS   : '+' ;
MINUS  : '-' ;
STAR   : '*' ;
SLASH  : '/' ;
AT     : '@' ;
CARET  : '^' ;
GE     : '>=' ;
LE     : '<=' ;
GT     : '>' ;
LT     : '<' ;

IDENT  : [A-Za-z_] [A-Za-z0-9_]* ;
NUMBER : ( [0-9]+ ('.' [0-9]*)? | '.' [0-9]+ ) ([eE] [+-]? [0-9]+)? ;

NEWLINE : '\r'? '\n' {
  if (bracketDepth > 0) {
    if (nextLineStartsStatement()) bracketDepth = 0;
    else skip();
  }
} ;
COMMENT : '#' ~[\r\n]* -> skip ;
WS      : [ \t\f]+ -> skip ;
// Anything else becomes one token that the parser never expects; the error listener names it.
INVALID : . ;
